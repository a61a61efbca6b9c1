/** One figure a benchmark reports, with the baseline measured in the same run. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value (or the inverse when lower is better, as `notes` says). */
  ratio?: number;
  target?: string;
  notes?: string;
}

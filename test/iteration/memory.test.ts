import { describeIteration } from './suite.js';

describeIteration({
  name: 'array source, memory stores',
  options: async () => ({}),
  source: async (ids) => ids,
  filtered: async (ids, from, to) => ids.filter((_, i) => i >= from && i <= to),
});

/** The few log calls the library makes; pass your own (pino, winston, console) or `silentLogger`. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const consoleLogger: Logger = {
  info: (message, fields) => console.info(`[cloud-defer] ${message}`, ...(fields ? [fields] : [])),
  warn: (message, fields) => console.warn(`[cloud-defer] ${message}`, ...(fields ? [fields] : [])),
  error: (message, fields) => console.error(`[cloud-defer] ${message}`, ...(fields ? [fields] : [])),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

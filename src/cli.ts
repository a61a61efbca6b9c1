// The `cloud-defer` command line. `cloud-defer emulator` runs the Cloud Tasks emulator standalone.
import { startEmulator, type EmulatorLogger, type EmulatorOptions } from './emulator/index.js';
import { DOCTOR_USAGE, doctorCommand } from './doctor.js';

const USAGE = `Usage:
  cloud-defer emulator [--port N] [--host H] [--project P] [--location L] [--app-engine-base-url URL]
                       [--app-engine-route SERVICE=URL]... [--queues FILE] [--function-url-base URL]
                       [--deny-permission PERMISSION]... [--verbose]

Starts the Cloud Tasks emulator (gRPC and REST on one port), prints CLOUD_TASKS_EMULATOR_HOST=host:port
and CLOUD_TASKS_EMULATOR_JWKS_URI=url on stdout, and runs until SIGINT or SIGTERM.
  --queues FILE                 queues to create at start: a YAML/JSON list, or App Engine's queue.yaml
  --app-engine-route S=URL      send App Engine tasks for service S (or version.service) to URL
  --function-url-base URL       where firebase-admin tasks with an empty url go (URL/<function>)
  --deny-permission P           TestIamPermissions refuses P (repeatable)`;

interface EmulatorArgs {
  options: EmulatorOptions;
  verbose: boolean;
}

function parseEmulatorArgs(argv: readonly string[]): EmulatorArgs {
  const options: EmulatorOptions = {};
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inlineValue] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const next = inlineValue ?? argv[++i];
      if (next === undefined || next === '') throw new Error(`${flag} needs a value\n\n${USAGE}`);
      return next;
    };
    switch (flag) {
      case '--port': {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0..65535');
        options.port = port;
        break;
      }
      case '--host':
        options.host = value();
        break;
      case '--project':
        options.projectId = value();
        break;
      case '--location':
        options.location = value();
        break;
      case '--app-engine-base-url':
        options.appEngineBaseUrl = value();
        break;
      case '--app-engine-route': {
        const [service, url] = value().split(/=(.*)/s, 2);
        if (!service || !url) throw new Error('--app-engine-route needs SERVICE=URL (or VERSION.SERVICE=URL)');
        options.appEngineRoutes = { ...options.appEngineRoutes, [service]: url };
        break;
      }
      case '--queues':
        options.queues = value();
        break;
      case '--function-url-base':
        options.functionUrlBase = value();
        break;
      case '--deny-permission': {
        const denied = Array.isArray(options.deniedPermissions) ? options.deniedPermissions : [];
        options.deniedPermissions = [...denied, value()];
        break;
      }
      case '--verbose':
        verbose = true;
        break;
      default:
        throw new Error(`unknown option ${arg}\n\n${USAGE}`);
    }
  }
  return { options, verbose };
}

function stderrLogger(verbose: boolean): EmulatorLogger {
  const write = (level: string) => (message: string) => process.stderr.write(`[cloud-tasks-emulator] ${level} ${message}\n`);
  return {
    ...(verbose ? { debug: write('debug') } : {}),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

async function runEmulator(argv: readonly string[]): Promise<void> {
  const { options, verbose } = parseEmulatorArgs(argv);
  const emulator = await startEmulator({ ...options, logger: stderrLogger(verbose) });
  process.stdout.write(`CLOUD_TASKS_EMULATOR_HOST=${emulator.address}\n`);
  process.stdout.write(`CLOUD_TASKS_EMULATOR_JWKS_URI=${emulator.jwksUri}\n`);
  await new Promise<void>((resolve) => {
    const shutdown = (): void => {
      process.off('SIGINT', shutdown);
      process.off('SIGTERM', shutdown);
      resolve();
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });
  await emulator.stop();
}

/** Entry point of bin/cloud-defer.cjs. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'emulator':
      await runEmulator(rest);
      return;
    case 'doctor':
      process.exitCode = await doctorCommand(rest);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n\n${DOCTOR_USAGE}\n`);
      return;
    default:
      throw new Error(`unknown command "${command}"\n\n${USAGE}`);
  }
}

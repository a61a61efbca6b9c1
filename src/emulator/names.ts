// Resource names and ids, parsed and validated the way Cloud Tasks does.
import { randomBytes } from 'node:crypto';
import { QUEUE_ID } from '../core/transport.js';
import { invalidArgument } from './errors.js';

export interface LocationName {
  project: string;
  location: string;
}
export interface QueueName extends LocationName {
  queueId: string;
}
export interface TaskName extends QueueName {
  taskId: string;
}

// PROJECT_ID: letters, numbers, hyphens, colons or periods. LOCATION_ID: a canonical location id.
const PROJECT = '[A-Za-z0-9][A-Za-z0-9:.-]{0,99}';
const LOCATION = '[A-Za-z0-9][A-Za-z0-9-]{0,62}';
const LOCATION_NAME = new RegExp(`^projects/(${PROJECT})/locations/(${LOCATION})$`);
const QUEUE_NAME = new RegExp(`^projects/(${PROJECT})/locations/(${LOCATION})/queues/([^/]*)$`);
const TASK_NAME = new RegExp(`^projects/(${PROJECT})/locations/(${LOCATION})/queues/([^/]*)/tasks/([^/]*)$`);
const TASK_ID = /^[A-Za-z0-9_-]{1,500}$/;

export function parseLocationName(name: string | undefined): LocationName {
  const match = LOCATION_NAME.exec(name ?? '');
  if (!match) {
    throw invalidArgument(`Parent must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>".`);
  }
  return { project: match[1]!, location: match[2]! };
}

export function parseQueueName(name: string | undefined): QueueName {
  const match = QUEUE_NAME.exec(name ?? '');
  if (!match) {
    throw invalidArgument('Queue name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/<QUEUE_ID>".');
  }
  const queueId = match[3]!;
  if (!QUEUE_ID.test(queueId)) {
    throw invalidArgument(
      `Queue ID "${queueId}" can contain only letters ([A-Za-z]), numbers ([0-9]), or hyphens (-). ` + 'Queue ID must be between 1 and 100 characters.',
    );
  }
  return { project: match[1]!, location: match[2]!, queueId };
}

export function parseTaskName(name: string | undefined): TaskName {
  const match = TASK_NAME.exec(name ?? '');
  if (!match) {
    throw invalidArgument('Task name must be formatted: ' + '"projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/<QUEUE_ID>/tasks/<TASK_ID>".');
  }
  const queue = parseQueueName(`projects/${match[1]}/locations/${match[2]}/queues/${match[3]}`);
  const taskId = match[4]!;
  if (!TASK_ID.test(taskId)) {
    throw invalidArgument(
      `Task ID "${taskId}" can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens (-), or underscores (_). ` +
        'Task ID must between 1 and 500 characters.',
    );
  }
  return { ...queue, taskId };
}

export const formatLocationName = (n: LocationName): string => `projects/${n.project}/locations/${n.location}`;
export const formatQueueName = (n: QueueName): string => `${formatLocationName(n)}/queues/${n.queueId}`;
export const formatTaskName = (n: TaskName): string => `${formatQueueName(n)}/tasks/${n.taskId}`;

/** A random id shaped like the ones Cloud Tasks generates: a 19-digit decimal number. */
export function generateTaskId(): string {
  const random = randomBytes(8).readBigUInt64BE() % 9_000_000_000_000_000_000n;
  return (random + 1_000_000_000_000_000_000n).toString();
}

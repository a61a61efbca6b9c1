// IAM on queues, as far as a test needs it: a policy per queue kept in memory (read-modify-write
// guarded by its etag) and TestIamPermissions answering what it is asked, minus a configurable
// deny list, so that permission checks (a `doctor`, a start-up probe) can be tested both ways.
import { status } from '@grpc/grpc-js';
import { ApiError, invalidArgument } from './errors.js';

export interface BindingMessage {
  role?: string;
  members?: string[];
  condition?: { expression?: string; title?: string; description?: string; location?: string } | null;
}

export interface PolicyMessage {
  version?: number;
  bindings?: BindingMessage[];
  auditConfigs?: unknown[];
  etag?: Buffer | Uint8Array;
}

/** Permissions TestIamPermissions refuses: a list, or a predicate over (queue name, permission). */
export type DeniedPermissions = readonly string[] | ((queueName: string, permission: string) => boolean);

const MEMBER =
  /^(user|serviceAccount|group|domain|principal|principalSet|deleted:user|deleted:serviceAccount|deleted:group):.+$|^(allUsers|allAuthenticatedUsers)$/;
export const CONCURRENT_POLICY_CHANGE = 'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.';

interface StoredPolicy {
  version: number;
  bindings: BindingMessage[];
  etag: Buffer;
}

function etagFor(revision: number): Buffer {
  const etag = Buffer.alloc(8);
  etag.writeBigUInt64BE(BigInt(revision) + 0x4277_0000_0000_0000n);
  return etag;
}

export class IamPolicies {
  private readonly policies = new Map<string, StoredPolicy>();
  private revision = 0;

  constructor(private readonly denied: DeniedPermissions = []) {}

  get(queueName: string): PolicyMessage {
    const policy = this.policies.get(queueName) ?? { version: 0, bindings: [], etag: etagFor(0) };
    return { version: policy.version, bindings: policy.bindings.map((b) => ({ ...b, members: [...(b.members ?? [])] })), etag: policy.etag };
  }

  set(queueName: string, policy: PolicyMessage | null | undefined): PolicyMessage {
    if (!policy) throw invalidArgument('Policy is required.');
    const current = this.policies.get(queueName);
    const given = policy.etag && policy.etag.length > 0 ? Buffer.from(policy.etag) : undefined;
    if (given && !given.equals(current?.etag ?? etagFor(0))) {
      throw new ApiError(status.ABORTED, CONCURRENT_POLICY_CHANGE);
    }
    const bindings: BindingMessage[] = [];
    for (const binding of policy.bindings ?? []) {
      if (!binding.role || !/^(roles|projects\/[^/]+\/roles|organizations\/[^/]+\/roles)\/[A-Za-z0-9_.]+$/.test(binding.role)) {
        throw invalidArgument(`Role ${binding.role ?? '(empty)'} is not a valid role name.`);
      }
      for (const member of binding.members ?? []) {
        if (!MEMBER.test(member)) throw invalidArgument(`Invalid member "${member}": expected e.g. user:alice@example.com or serviceAccount:…`);
      }
      if ((binding.members ?? []).length > 0)
        bindings.push({ role: binding.role, members: [...(binding.members ?? [])], ...(binding.condition ? { condition: binding.condition } : {}) });
    }
    const stored: StoredPolicy = {
      version: bindings.some((b) => b.condition) ? 3 : 1,
      bindings,
      etag: etagFor(++this.revision),
    };
    this.policies.set(queueName, stored);
    return this.get(queueName);
  }

  testPermissions(queueName: string, permissions: readonly string[] | undefined): string[] {
    const allowed: string[] = [];
    for (const permission of permissions ?? []) {
      if (!/^[a-z]+\.[A-Za-z]+\.[A-Za-z]+$/.test(permission)) {
        throw invalidArgument(`Permission ${permission} is not valid: wildcards and malformed names are refused.`);
      }
      const refused = typeof this.denied === 'function' ? this.denied(queueName, permission) : this.denied.includes(permission);
      if (!refused) allowed.push(permission);
    }
    return allowed;
  }

  drop(queueName: string): void {
    this.policies.delete(queueName);
  }
}

/** OIDC tokens on HTTP targets, verified with google-auth-library against the emulator's key. */
import * as assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { OAuth2Client } from 'google-auth-library';
import { ManualClock } from '../../src/emulator/index.js';
import { PARENT, queuePath, startTestContext, uniqueQueueId, type TestContext } from './helpers.js';

const SERVICE_ACCOUNT = 'tasks-invoker@test-project.iam.gserviceaccount.com';
const ISSUERS = ['https://accounts.google.com'];

describe('emulator: OIDC tokens', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await startTestContext();
  });
  after(async () => {
    await ctx.close();
  });

  async function tokenFor(context: TestContext, oidcToken: Record<string, string>, path = '/secure'): Promise<string> {
    const name = queuePath(uniqueQueueId());
    await context.client.createQueue({ parent: PARENT, queue: { name } });
    const before = context.target.requests.length;
    await context.client.createTask({ parent: name, task: { httpRequest: { url: context.target.url(path), oidcToken } } });
    const request = (await context.target.waitForRequests(before + 1))[before]!;
    const authorization = request.headers['authorization'] ?? '';
    assert.match(authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    return authorization.slice('Bearer '.length);
  }

  it('sends a Google-style ID token whose audience defaults to the target URL', async () => {
    const token = await tokenFor(ctx, { serviceAccountEmail: SERVICE_ACCOUNT }, '/secure?x=1');
    const ticket = await new OAuth2Client().verifySignedJwtWithCertsAsync(token, ctx.emulator.pemCerts, ctx.target.url('/secure?x=1'), ISSUERS);
    const claims = ticket.getPayload()!;
    assert.equal(claims.iss, 'https://accounts.google.com');
    assert.equal(claims.aud, ctx.target.url('/secure?x=1'));
    assert.equal(claims.email, SERVICE_ACCOUNT);
    assert.equal(claims.email_verified, true);
    assert.match(claims.sub, /^\d{21}$/);
    assert.equal(claims.azp, claims.sub);
    assert.equal(claims.iat, Math.floor(ctx.clock.now() / 1000));
    assert.equal(claims.exp, claims.iat + 3600, 'valid for one hour');
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string };
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, ctx.emulator.jwks.keys[0]!.kid);
  });

  it('uses the audience given, and a verifier expecting another audience rejects the token', async () => {
    const token = await tokenFor(ctx, { serviceAccountEmail: SERVICE_ACCOUNT, audience: 'https://my-service.example' });
    const verifier = new OAuth2Client();
    const ticket = await verifier.verifySignedJwtWithCertsAsync(token, ctx.emulator.pemCerts, 'https://my-service.example', ISSUERS);
    assert.equal(ticket.getPayload()!.aud, 'https://my-service.example');
    await assert.rejects(verifier.verifySignedJwtWithCertsAsync(token, ctx.emulator.pemCerts, ctx.target.url('/secure'), ISSUERS), /Wrong recipient/);
  });

  it('is rejected once tampered with', async () => {
    const token = await tokenFor(ctx, { serviceAccountEmail: SERVICE_ACCOUNT });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    claims.email = 'attacker@evil.example';
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    await assert.rejects(
      new OAuth2Client().verifySignedJwtWithCertsAsync(forged, ctx.emulator.pemCerts, ctx.target.url('/secure'), ISSUERS),
      /Invalid token signature/,
    );
  });

  it('publishes its key at jwksUri (JWKS) and pemCertsUri, usable by OAuth2Client#verifyIdToken', async () => {
    const token = await tokenFor(ctx, { serviceAccountEmail: SERVICE_ACCOUNT });
    const jwks = (await (await fetch(ctx.emulator.jwksUri)).json()) as { keys: Array<Record<string, string>> };
    assert.deepEqual(jwks, ctx.emulator.jwks);
    const pemFromJwk = createPublicKey({ key: jwks.keys[0]!, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    const ticket = await new OAuth2Client().verifySignedJwtWithCertsAsync(token, { [jwks.keys[0]!['kid']!]: pemFromJwk }, ctx.target.url('/secure'), ISSUERS);
    assert.equal(ticket.getPayload()!.email, SERVICE_ACCOUNT);

    const viaEndpoint = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: ctx.emulator.pemCertsUri } });
    const verified = await viaEndpoint.verifyIdToken({ idToken: token, audience: ctx.target.url('/secure') });
    assert.equal(verified.getPayload()!.email, SERVICE_ACCOUNT);
  });

  it('overrides an Authorization header given on the task', async () => {
    const name = queuePath(uniqueQueueId());
    await ctx.client.createQueue({ parent: PARENT, queue: { name } });
    const before = ctx.target.requests.length;
    await ctx.client.createTask({
      parent: name,
      task: {
        httpRequest: {
          url: ctx.target.url('/secure'),
          headers: { Authorization: 'Basic c2VjcmV0' },
          oidcToken: { serviceAccountEmail: SERVICE_ACCOUNT },
        },
      },
    });
    const request = (await ctx.target.waitForRequests(before + 1))[before]!;
    assert.match(request.headers['authorization'] ?? '', /^Bearer /);
  });

  it('expires: a token issued more than an hour ago is rejected', async () => {
    const twoHoursAgo = new ManualClock(Date.now() - 2 * 3600_000);
    const old = await startTestContext({ clock: twoHoursAgo });
    try {
      const token = await tokenFor(old, { serviceAccountEmail: SERVICE_ACCOUNT });
      await assert.rejects(
        new OAuth2Client().verifySignedJwtWithCertsAsync(token, old.emulator.pemCerts, old.target.url('/secure'), ISSUERS),
        /Token used too late/,
      );
    } finally {
      await old.close();
    }
  });

  it("signs with a fresh key per emulator: another emulator's key does not verify it", async () => {
    const token = await tokenFor(ctx, { serviceAccountEmail: SERVICE_ACCOUNT });
    const other = await startTestContext();
    try {
      const otherKeyUnderOurKid = { [ctx.emulator.jwks.keys[0]!.kid]: Object.values(other.emulator.pemCerts)[0]! };
      await assert.rejects(
        new OAuth2Client().verifySignedJwtWithCertsAsync(token, otherKeyUnderOurKid, ctx.target.url('/secure'), ISSUERS),
        /Invalid token signature/,
      );
    } finally {
      await other.close();
    }
  });
});

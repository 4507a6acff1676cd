// A real OpenID Connect provider (the npm package oidc-provider) for the
// sign-in tests: its own clients, users with groups and tenants, signing
// keys made at start (so a restart with another kid is a key rotation), the
// development login page (any password; the login names an account below),
// consent skipped for our clients, RP-initiated logout on.
//
//   node oidc_provider.mjs '<json>'
//
// json: {
//   "port": 9000,
//   "keys": [{"kty": "RSA" | "EC", "kid": "k1"}],       first one signs
//   "clients": [{"client_id", "client_secret"?, "redirect_uris", "post_logout_redirect_uris",
//                "id_token_signed_response_alg"?}],
//   "users": {"alice": {"groups": ["sre"], "tenants": ["acme"], "email": "..."}},
//   "claims_in_id_token": false       true: groups and tenants in the ID token too
// }
//
// Prints one JSON line {"issuer": "http://127.0.0.1:<port>"} once listening.

import { generateKeyPairSync } from 'node:crypto'
import Provider from 'oidc-provider'

const config = JSON.parse(process.argv[2] ?? '{}')
const issuer = `http://127.0.0.1:${config.port}`

const jwks = {
  keys: (config.keys ?? [{ kty: 'RSA', kid: 'rsa-1' }]).map(({ kty, kid }) => {
    const { privateKey } =
      kty === 'EC' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })
    return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: kty === 'EC' ? 'ES256' : 'RS256' }
  }),
}
const users = config.users ?? {}

const provider = new Provider(issuer, {
  clients: config.clients ?? [],
  jwks,
  cookies: { keys: ['oglogstream-test-provider-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
    tenants: ['tenants'],
  },
  // false: the scopes' claims go into the ID token as well as userinfo.
  conformIdTokenClaims: !config.claims_in_id_token,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const user = users[id]
    if (!user) return undefined
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: user.name ?? id,
          email: user.email ?? `${id}@example.test`,
          groups: user.groups ?? [],
          ...(user.tenants ? { tenants: user.tenants } : {}),
        }
      },
    }
  },
  // Our clients are first-party: no consent page, every scope they ask for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)
    if (grantId) return ctx.oidc.provider.Grant.find(grantId)
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid')
    grant.addOIDCClaims(['preferred_username', 'name', 'email', 'groups', 'tenants'])
    await grant.save()
    return grant
  },
})

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ issuer })}\n`)
})

const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

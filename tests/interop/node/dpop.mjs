// A public client using DPoP (RFC 9449) through panva's openid-client 6, against authserver.
//
// Env: ISSUER, CLIENT_ID, REDIRECT_URI, USERNAME, PASSWORD.
// Code + PKCE through the HTML forms (fetch + a cookie jar, as rp.mjs), then the code
// grant, userinfo and two refreshes with the library's DPoP handle (which also answers
// use_dpop_nonce challenges by itself), and one refresh with another key that must fail.
// Prints one JSON summary on stdout; exits 1 on any failure.

import * as client from 'openid-client'

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`missing env ${name}`)
  return value
}
const ISSUER = env('ISSUER')
const CLIENT_ID = env('CLIENT_ID')
const REDIRECT_URI = env('REDIRECT_URI')
const USERNAME = env('USERNAME')
const PASSWORD = env('PASSWORD')

const summary = {}
const assert = (cond, message) => {
  if (!cond) throw new Error(`assertion failed: ${message}`)
}

const jar = new Map()
async function browserFetch(url, init = {}) {
  const headers = { accept: 'text/html', ...(init.headers ?? {}) }
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  const response = await fetch(url, { ...init, headers, redirect: 'manual' })
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(';')
    const eq = pair.indexOf('=')
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
  }
  return response
}
const formValue = (html, name) => {
  const match = html.match(new RegExp(`name="${name}"[^>]*value="([^"]*)"`))
  assert(match, `no ${name} in the form`)
  return match[1].replace(/&amp;/g, '&')
}
const postForm = (path, fields) => browserFetch(new URL(path, ISSUER), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
})

async function browse(start) {
  let response = await browserFetch(start)
  let url = new URL(start)
  for (let i = 0; i < 10; i++) {
    if (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location'), url)
      if (location.origin !== new URL(ISSUER).origin) return location
      url = location
      response = await browserFetch(location)
      continue
    }
    const html = await response.text()
    if (html.includes('action="/login"')) {
      response = await postForm('/login', { csrf_token: formValue(html, 'csrf_token'), rid: formValue(html, 'rid'),
                                            username: USERNAME, password: PASSWORD })
    } else if (html.includes('action="/consent"')) {
      response = await postForm('/consent', { csrf_token: formValue(html, 'csrf_token'), rid: formValue(html, 'rid'),
                                              decision: 'allow' })
    } else {
      throw new Error(`stuck at ${url.pathname} (HTTP ${response.status})`)
    }
  }
  throw new Error('too many steps')
}

const payload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

async function main() {
  const execute = ISSUER.startsWith('http://') ? [client.allowInsecureRequests] : []
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, { token_endpoint_auth_method: 'none' },
                                        client.None(), { execute })
  summary.dpop_signing_alg_values_supported = config.serverMetadata().dpop_signing_alg_values_supported

  const keyPair = await client.randomDPoPKeyPair('ES256')
  const DPoP = client.getDPoPHandle(config, keyPair)
  summary.public_jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid profile offline_access', state,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
  })
  const callback = await browse(authUrl.href)
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier,
                                                                        expectedState: state }, undefined, { DPoP })
  summary.code_grant = { token_type: tokens.token_type, cnf: payload(tokens.access_token).cnf,
                         refresh_token: Boolean(tokens.refresh_token) }

  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub, { DPoP })
  summary.userinfo = { sub_ok: info.sub === tokens.claims().sub }

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP })
  summary.refresh = { token_type: refreshed.token_type, cnf: payload(refreshed.access_token).cnf }

  const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: thief })
    summary.refresh_with_another_key = 'succeeded'
  } catch (err) {
    summary.refresh_with_another_key = err.error ?? String(err)
  }
  const again = await client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP })
  summary.refresh_again = { token_type: again.token_type }
  summary.ok = true
}

try {
  await main()
} catch (err) {
  summary.ok = false
  summary.error = `${err.name}: ${err.message}${err.error ? ` (${err.error}: ${err.error_description})` : ''}`
  process.exitCode = 1
}
process.stdout.write(JSON.stringify(summary, null, 2) + '\n')

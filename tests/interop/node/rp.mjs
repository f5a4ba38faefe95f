// A relying party built on panva's openid-client 6, driving authserver end to end.
//
// Env: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME, PASSWORD,
//      POST_LOGOUT_REDIRECT_URI (optional; default: REDIRECT_URI's origin + "/logged-out").
// Acts as the browser itself (fetch + a cookie jar, redirects followed by hand,
// login and consent forms submitted), so the callback is never served: the
// code is read from the Location header. Prints one JSON summary on stdout;
// exits 1 on any failure (the error is in the summary's "error" member).

import * as client from 'openid-client'

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback
  if (value === undefined || value === '') throw new Error(`missing env ${name}`)
  return value
}

const ISSUER = env('ISSUER')
const CLIENT_ID = env('CLIENT_ID')
const CLIENT_SECRET = env('CLIENT_SECRET')
const REDIRECT_URI = env('REDIRECT_URI')
const USERNAME = env('USERNAME')
const PASSWORD = env('PASSWORD')
const POST_LOGOUT_REDIRECT_URI = env('POST_LOGOUT_REDIRECT_URI', new URL('/logged-out', REDIRECT_URI).href)
const SCOPE = 'openid profile email offline_access'

const summary = { steps: [] }
const step = (name, data = {}) => {
  summary.steps.push(name)
  summary[name] = data
}
const assert = (cond, message) => {
  if (!cond) throw new Error(`assertion failed: ${message}`)
}

// -- a minimal browser ----------------------------------------------------------

const jar = new Map()

function storeCookies(response) {
  for (const header of response.headers.getSetCookie()) {
    const [pair, ...attrs] = header.split(';')
    const eq = pair.indexOf('=')
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === ''
    if (expired) jar.delete(name)
    else jar.set(name, value)
  }
}

async function browserFetch(url, init = {}) {
  const headers = { accept: 'text/html', 'user-agent': 'openid-client-interop', ...(init.headers ?? {}) }
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  const response = await fetch(url, { ...init, headers, redirect: 'manual' })
  storeCookies(response)
  return response
}

function formValue(html, name) {
  const match = html.match(new RegExp(`name="${name}"[^>]*value="([^"]*)"`))
  assert(match, `no ${name} in the form`)
  return match[1].replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'")
}

async function postForm(path, fields) {
  return browserFetch(new URL(path, ISSUER), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  })
}

// Follow the browser through the OP until a redirect leaves it; returns that URL.
async function browse(start, { allowConfirm = false } = {}) {
  const pages = []
  let response = await browserFetch(start)
  let url = new URL(start)
  for (let i = 0; i < 12; i++) {
    if (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location'), url)
      if (location.origin !== new URL(ISSUER).origin) return { location, pages }
      url = location
      response = await browserFetch(location)
      continue
    }
    const html = await response.text()
    if (response.status === 200 && html.includes('action="/login"') && !html.includes('id="login-error"')) {
      pages.push('login')
      response = await postForm('/login', {
        csrf_token: formValue(html, 'csrf_token'), rid: formValue(html, 'rid'),
        username: USERNAME, password: PASSWORD,
      })
      continue
    }
    if (response.status === 200 && html.includes('action="/consent"')) {
      pages.push('consent')
      response = await postForm('/consent', {
        csrf_token: formValue(html, 'csrf_token'), rid: formValue(html, 'rid'), decision: 'allow',
      })
      continue
    }
    if (allowConfirm && response.status === 200 && html.includes('action="/logout"')) {
      pages.push('logout-confirm')
      const fields = { csrf_token: formValue(html, 'csrf_token'), confirm: 'yes' }
      for (const name of ['id_token_hint', 'post_logout_redirect_uri', 'state', 'client_id']) {
        const m = html.match(new RegExp(`name="${name}"[^>]*value="([^"]*)"`))
        if (m) fields[name] = m[1].replace(/&amp;/g, '&')
      }
      response = await postForm('/logout', fields)
      continue
    }
    throw new Error(`stuck at ${url.pathname} (HTTP ${response.status}): ${html.slice(0, 300)}`)
  }
  throw new Error('too many steps')
}

// -- the relying party ------------------------------------------------------------

async function main() {
  const execute = ISSUER.startsWith('http://') ? [client.allowInsecureRequests] : []
  const config = await client.discovery(
    new URL(ISSUER), CLIENT_ID, {}, client.ClientSecretBasic(CLIENT_SECRET), { execute },
  )
  const meta = config.serverMetadata()
  assert(meta.issuer === ISSUER, 'issuer')
  assert(meta.authorization_response_iss_parameter_supported === true, 'RFC 9207 advertised')
  step('discovery', { issuer: meta.issuer, end_session_endpoint: meta.end_session_endpoint })

  // authorization code + PKCE
  const codeVerifier = client.randomPKCECodeVerifier()
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: SCOPE, state, nonce,
    code_challenge: codeChallenge, code_challenge_method: 'S256',
  })
  const { location: callback, pages } = await browse(authUrl.href)
  assert(callback.href.startsWith(REDIRECT_URI), `callback ${callback.href}`)
  assert(callback.searchParams.get('iss') === ISSUER, 'iss in the callback (RFC 9207)')
  step('authorize', { pages, callback_params: [...callback.searchParams.keys()].sort() })

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  })
  const idClaims = tokens.claims()
  assert(idClaims && idClaims.sub, 'ID token claims')
  assert(tokens.refresh_token, 'refresh token issued')
  assert(tokens.token_type.toLowerCase() === 'bearer', 'token_type')
  step('code_grant', {
    token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope,
    id_token: { sub: idClaims.sub, aud: idClaims.aud, nonce_ok: idClaims.nonce === nonce,
                auth_time: idClaims.auth_time, sid: idClaims.sid },
  })

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)
  step('userinfo', { sub: userinfo.sub, email: userinfo.email, preferred_username: userinfo.preferred_username })

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  assert(refreshed.access_token, 'refreshed access token')
  step('refresh', {
    rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    id_token: Boolean(refreshed.id_token),
    sub: refreshed.claims()?.sub ?? null,
  })

  const atInfo = await client.tokenIntrospection(config, refreshed.access_token)
  const rtBefore = await client.tokenIntrospection(config, refreshed.refresh_token)
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
  const rtAfter = await client.tokenIntrospection(config, refreshed.refresh_token)
  step('revocation', { ok: true })
  step('introspection', {
    access_token_active: atInfo.active, access_token_sub: atInfo.sub, access_token_client_id: atInfo.client_id,
    refresh_token_active_before_revocation: rtBefore.active,
    refresh_token_active_after_revocation: rtAfter.active,
  })

  let refreshAfterRevocation = 'succeeded'
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token)
  } catch (err) {
    refreshAfterRevocation = err.error ?? err.code ?? String(err)
  }
  step('refresh_after_revocation', { result: refreshAfterRevocation })

  const logoutState = client.randomState()
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: logoutState,
  })
  const { location: after, pages: logoutPages } = await browse(endSession.href, { allowConfirm: true })
  assert(after.origin + after.pathname === POST_LOGOUT_REDIRECT_URI, `post-logout redirect ${after.href}`)
  assert(after.searchParams.get('state') === logoutState, 'state on the post-logout redirect')
  step('end_session', { redirected_to: after.origin + after.pathname, state_ok: true, pages: logoutPages })

  // the session is gone: prompt=none now answers login_required
  const silent = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid', state: client.randomState(), prompt: 'none',
    code_challenge: codeChallenge, code_challenge_method: 'S256',
  })
  const { location: silentCb } = await browse(silent.href)
  step('prompt_none_after_logout', {
    error: silentCb.searchParams.get('error'), iss: silentCb.searchParams.get('iss'),
  })
  summary.ok = true
}

try {
  await main()
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
} catch (err) {
  summary.ok = false
  summary.error = `${err.name}: ${err.message}${err.error ? ` (${err.error}: ${err.error_description})` : ''}`
  if (err.cause) summary.cause = String(err.cause?.message ?? err.cause)
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
  process.exit(1)
}

// The TypeScript MCP SDK's client against the broker and the sample MCP
// server of examples/mcp/whoami. Run by internal/e2e/mcp_test.go, which
// starts them and sets BROKER_URL, MCP_URL (the server's endpoint, its
// resource identifier), OTHER_URL (a second server, another resource),
// MAILBOX_URL (where the one-time codes can be read), CLIENT_ID (a
// first-party public client of the broker's configuration) and
// NODE_EXTRA_CA_CERTS (the test servers' certificate).
//
// The client knows only MCP_URL: it discovers the server's RFC 9728
// metadata and the broker's RFC 8414 metadata, uses the preregistered
// client or registers itself, and a person signs in through the broker's
// pages over HTTP (fetch with a cookie jar): email, the code from the
// mailbox, the consent page when shown. Then the tool is called, the
// short-lived access token expires, and the SDK refreshes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const { BROKER_URL, MCP_URL, OTHER_URL, MAILBOX_URL, CLIENT_ID } = process.env;
const TOKEN_TTL_MS = Number(process.env.TOKEN_TTL_MS);
const REDIRECT_URL = 'http://127.0.0.1/callback';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Person is someone at a browser: fetch with a cookie jar, following
// redirects within the broker and stopping at the first one elsewhere.
class Person {
  constructor(email) {
    this.email = email;
    this.cookies = new Map();
    this.consents = 0;
  }

  async load(url, form) {
    let target = new URL(url);
    let body = form ? new URLSearchParams(form).toString() : undefined;
    for (let hops = 0; hops < 10; hops++) {
      const headers = {};
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
      if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(target, { method: body ? 'POST' : 'GET', body, headers, redirect: 'manual' });
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attrs] = c.split(';');
        const i = pair.indexOf('=');
        const name = pair.slice(0, i).trim();
        if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || pair.slice(i + 1) === '') this.cookies.delete(name);
        else this.cookies.set(name, pair.slice(i + 1));
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const next = new URL(location, target);
        if (next.origin !== new URL(BROKER_URL).origin) return { status: res.status, url: target, location: next, body: '' };
        target = next;
        body = undefined;
        continue;
      }
      return { status: res.status, url: target, location: null, body: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  // forms are the page's forms: where each posts, its hidden fields and
  // its inner HTML.
  forms(page) {
    return [...page.body.matchAll(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)].map(([, action, inner]) => {
      const fields = {};
      for (const [input] of inner.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) fields[attr(input, 'name')] = attr(input, 'value');
      return { url: new URL(unescape(action), page.url), fields, inner };
    });
  }

  async submit(page, path, values) {
    if (page.location) throw new Error(`redirected to ${page.location} instead of the page with ${path}`);
    const form = this.forms(page).find((f) => f.url.pathname === path);
    assert.ok(form, `page ${page.url} (${page.status}) has no form posting to ${path}: ${page.body.slice(0, 300)}`);
    return this.load(form.url, { ...form.fields, ...values });
  }

  // allow answers the consent page with its Allow button: the button
  // whose name, value or label says allow, in a form posting to
  // /consent... (one form with a button per decision, or a form per
  // decision).
  async allow(page) {
    for (const form of this.forms(page).filter((f) => f.url.pathname.startsWith('/consent'))) {
      for (const [, tag, label] of form.inner.matchAll(/<button([^>]*)>([\s\S]*?)<\/button>/g)) {
        const name = attr(tag, 'name');
        const value = attr(tag, 'value');
        if (!/allow/i.test(`${name} ${value} ${label} ${form.url.pathname}`)) continue;
        return this.load(form.url, name ? { ...form.fields, [name]: value } : form.fields);
      }
    }
    throw new Error(`the consent page ${page.url} has no Allow button: ${page.body.slice(0, 500)}`);
  }

  // signIn follows an authorization URL through the broker's pages and
  // returns the redirect back to the client.
  async signIn(authorizationUrl) {
    let page = await this.load(authorizationUrl);
    if (page.location) return page.location; // the broker's session answered
    page = await this.submit(page, '/login', { email: this.email });
    const code = await (await fetch(`${MAILBOX_URL}/mailbox?to=${encodeURIComponent(this.email)}`)).text();
    assert.match(code, /\S/, `no code was mailed to ${this.email}`);
    page = await this.submit(page, '/login/code', { code });
    if (!page.location && page.url.pathname.startsWith('/consent')) {
      this.consents++;
      page = await this.allow(page);
    }
    assert.ok(page.location, `the sign-in ended on ${page.url} (${page.status}), not at the client`);
    return page.location;
  }
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return m ? unescape(m[1]) : '';
}

function unescape(s) {
  return s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#34;/g, '"');
}

// Provider is the OAuthClientProvider of an MCP client that keeps
// everything in memory and has person sign in when the SDK sends it to
// the authorization endpoint.
class Provider {
  constructor(person, clientId) {
    this.person = person;
    this.client = clientId ? { client_id: clientId } : undefined;
    this.saved = []; // every token response, in order
    this.expectedState = undefined;
    this.result = undefined; // the redirect back: code, state, iss
  }

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return {
      client_name: 'whoami agent (TypeScript)',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.expectedState = crypto.randomUUID();
    return this.expectedState;
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(info) {
    this.client = info;
  }

  tokens() {
    return this.saved.at(-1);
  }

  saveTokens(tokens) {
    this.saved.push(tokens);
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }

  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }

  async redirectToAuthorization(url) {
    // SEP-2207: a client that keeps refresh tokens asks for
    // offline_access where the authorization server offers it; the SDK
    // requests only the scopes the server named.
    const offered = this.discovery?.authorizationServerMetadata?.scopes_supported ?? [];
    const scopes = (url.searchParams.get('scope') ?? '').split(' ').filter(Boolean);
    if (offered.includes('offline_access') && !scopes.includes('offline_access')) {
      url.searchParams.set('scope', [...scopes, 'offline_access'].join(' '));
    }
    const back = await this.person.signIn(url);
    this.result = back.searchParams;
  }
}

// connect runs the SDK's client with provider: the first attempt sends
// the person to sign in, the code is redeemed, the second connects.
async function connect(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  const client = new Client({ name: 'broker-e2e', version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError, 'without a token the server refuses');
  const back = provider.result;
  assert.ok(back, 'the SDK sent the person to the broker');
  assert.equal(back.get('error'), null, `the broker refused: ${back.get('error')}: ${back.get('error_description')}`);
  assert.equal(back.get('state'), provider.expectedState);
  assert.equal(back.get('iss'), BROKER_URL, 'RFC 9207: the broker names itself');
  await transport.finishAuth(back.get('code'));

  const authorized = new Client({ name: 'broker-e2e', version: '1.0.0' });
  await authorized.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider }));
  return authorized;
}

async function whoami(client) {
  const result = await client.callTool({ name: 'whoami' });
  assert.ok(!result.isError, `whoami failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent;
}

// flow is what every registration shares.
async function flow(provider, { consent, clientId }) {
  const client = await connect(provider);
  try {
    const who = await whoami(client);
    assert.match(who.sub, UUID);
    assert.equal(who.client_id, clientId ?? provider.client.client_id);
    assert.deepEqual(who.scopes, ['whoami']);
    assert.deepEqual(who.aud, [MCP_URL]);
    assert.equal(provider.person.consents > 0, consent, 'consent page shown to third-party clients only');
    assert.ok(provider.tokens().refresh_token, 'a refresh token was issued');

    // The access token expires (the resource's lifetime, and the
    // server allows almost no clock skew); the server answers 401 and
    // the SDK refreshes, then retries.
    const before = provider.saved.length;
    await sleep(TOKEN_TTL_MS + 1000);
    const again = await whoami(client);
    assert.equal(again.sub, who.sub);
    assert.ok(provider.saved.length > before, 'the SDK refreshed the expired token');

    // The token is for this server alone: another refuses it and
    // points to its own metadata.
    const res = await fetch(OTHER_URL, {
      method: 'POST',
      headers: { authorization: `Bearer ${provider.tokens().access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    await res.body?.cancel();
    assert.equal(res.status, 401);
    const other = new URL(OTHER_URL);
    assert.match(res.headers.get('www-authenticate'), /error="invalid_token"/);
    assert.ok(res.headers.get('www-authenticate').includes(`resource_metadata="${other.origin}/.well-known/oauth-protected-resource${other.pathname}"`));
  } finally {
    await client.close();
  }
}

async function brokerMetadata() {
  const res = await fetch(`${BROKER_URL}/.well-known/oauth-authorization-server`);
  assert.equal(res.status, 200);
  return res.json();
}

test('preregistered first-party client: sign in, call the tool, refresh', async () => {
  await flow(new Provider(new Person('grace@example.com'), CLIENT_ID), { consent: false, clientId: CLIENT_ID });
});

// The Go test opens registration: the SDK finds the endpoint in the
// broker's metadata and registers itself.
test('dynamic registration: register, consent, call the tool, refresh', async () => {
  assert.ok((await brokerMetadata()).registration_endpoint, 'the broker advertises registration_endpoint');
  await flow(new Provider(new Person('linus@example.com')), { consent: true });
});

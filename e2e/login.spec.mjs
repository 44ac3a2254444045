// Browser test of the broker's login pages, in headless Chromium through
// playwright-core. Run by `go test ./internal/e2e`, which starts the broker,
// a fake Auth0 and a test client, and passes their addresses:
// BROKER_URL, CLIENT_URL (with /mailbox?to=EMAIL, the test inbox),
// CHROMIUM (the browser) and SCREENSHOT_DIR.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { BROKER_URL, CLIENT_URL, CHROMIUM, SCREENSHOT_DIR } = process.env;
for (const [k, v] of Object.entries({ BROKER_URL, CLIENT_URL, CHROMIUM, SCREENSHOT_DIR })) {
  if (!v) throw new Error(`${k} is not set; run this through go test ./internal/e2e`);
}
mkdirSync(SCREENSHOT_DIR, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => { await browser?.close(); });

// newPage opens a page in a fresh context (its own cookies) and fails the
// test on any Content-Security-Policy violation or script error.
async function newPage(t, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-GB", ...options });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  t.after(async () => {
    await context.close();
    // A page answered with 4xx logs "Failed to load resource"; that is expected.
    assert.deepEqual(problems.filter((p) => !/^Failed to load resource/.test(p)), [], "console errors (CSP violations, script errors)");
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${SCREENSHOT_DIR}/${name}.png`, fullPage: true });
}

// axe runs axe-core on the page with no rules disabled and fails on a
// serious or critical violation; lesser ones are reported.
async function axe(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const summary = result.violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  console.log(`axe ${name}: ${result.passes.length} rules passed, ${result.violations.length} violations${summary.length ? "\n  " + summary.join("\n  ") : ""}`);
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => v.id), [], `serious or critical axe violations on ${name}`);
}

// focusedId names the focused element once the page's autofocus has
// been applied: Chromium applies it after the page loads, as a task of
// its own, so a page just shown may still have its body focused. If
// nothing takes focus within five seconds, the body is named and the
// caller's assertion fails as it would have.
async function focusedId(page) {
  await page
    .waitForFunction(() => document.activeElement && document.activeElement !== document.body, null, { timeout: 5000 })
    .catch(() => {});
  return page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim());
}

async function mailbox(email) {
  const res = await fetch(`${CLIENT_URL}/mailbox?to=${encodeURIComponent(email)}`);
  const code = (await res.text()).trim();
  assert.match(code, /^\d{6}$/, `a code was mailed to ${email}`);
  return code;
}

test("one-time code: client → email → code → client with tokens, by keyboard", async (t) => {
  const page = await newPage(t);
  await page.goto(CLIENT_URL);
  await page.click("#start");
  await page.waitForURL(`${BROKER_URL}/login?**`);
  assert.equal(await page.textContent("h1"), "Sign in");
  assert.equal(await focusedId(page), "email", "the email field has focus");
  assert.equal(await page.getAttribute("#email", "autocomplete"), "email");
  // The branding colour reaches the button (its inline style passes the CSP by hash).
  assert.equal(await page.$eval("button[type=submit]", (b) => getComputedStyle(b).backgroundColor), "rgb(91, 63, 209)");
  await axe(page, "login");
  await shot(page, "01-login");

  await page.keyboard.type("not-an-email");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#email-error");
  assert.equal(await page.getAttribute("#email", "aria-invalid"), "true");
  assert.match(await page.getAttribute("#email", "aria-describedby"), /email-error/);
  assert.match(await page.textContent("#email-error"), /Enter an email address/);
  await axe(page, "login with error");
  await shot(page, "02-login-error");

  await page.fill("#email", "");
  await page.focus("#email");
  await page.keyboard.type("alex@example.com");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${BROKER_URL}/login/code?**`);
  assert.equal(await page.textContent("h1"), "Check your email");
  assert.equal(await focusedId(page), "code", "the code field has focus");
  assert.equal(await page.getAttribute("#code", "autocomplete"), "one-time-code");
  // The resend cool-down: disabled by the server's answer, counted down by the script.
  assert.equal(await page.isDisabled("#resend"), true);
  const before = await page.textContent("#resend-wait");
  assert.match(before, /You can request a new code in \d+ s/);
  await page.waitForFunction((b) => document.getElementById("resend-wait").textContent !== b, before, { timeout: 3000 });
  await axe(page, "code");
  await shot(page, "03-code");

  // The server enforces the cool-down even when the button is forced.
  await page.$eval("#resend", (b) => { b.disabled = false; });
  await page.click("#resend");
  await page.waitForSelector("#resend-wait");
  assert.match(await page.textContent("#resend-wait"), /You can request a new code in \d+ s/);
  await shot(page, "04-resend-cooldown");

  const code = await mailbox("alex@example.com");
  const wrong = code === "000000" ? "111111" : "000000";
  await page.focus("#code");
  await page.keyboard.type(wrong); // six digits submit on their own
  await page.waitForSelector("#code-error");
  assert.match(await page.textContent("#code-error"), /That code is not right/);
  assert.equal(await page.getAttribute("#code", "aria-invalid"), "true");
  assert.equal(await focusedId(page), "code");
  await axe(page, "code with error");
  await shot(page, "05-code-error");

  await page.keyboard.type(code);
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Signed in");
  assert.equal(await page.textContent('[data-claim="email"]'), "alex@example.com");
  assert.equal(await page.textContent('[data-claim="amr"]'), "[otp]");
  assert.ok((await page.textContent("#access-token")).length > 20, "an access token");
  await shot(page, "06-client-signed-in");
});

test("home realm discovery: the domain's connector is named, then the upstream signs in", async (t) => {
  const page = await newPage(t);
  await page.goto(`${CLIENT_URL}/start`);
  await page.waitForURL(`${BROKER_URL}/login?**`);
  // The connector is also offered as a button.
  assert.ok(await page.isVisible("text=Continue with Corp SSO"));
  await page.keyboard.type("sam@corp.example.com");
  await page.keyboard.press("Enter");
  await page.waitForSelector("h1:has-text('Continue to Corp SSO')");
  assert.match(await page.textContent(".lead"), /sam@corp\.example\.com/);
  assert.equal(await focusedId(page), "Continue to Corp SSO", "the continue button has focus");
  await axe(page, "interstitial");
  await shot(page, "07-interstitial");

  await page.keyboard.press("Enter");
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Signed in");
  assert.equal(await page.textContent('[data-claim="idp"]'), "auth0");
  assert.equal(await page.textContent('[data-claim="email"]'), "sam@corp.example.com");
  await shot(page, "08-client-signed-in-sso");
});

test("a login through the upstream belongs to the browser that started it", async (t) => {
  // The owner's browser signs in as far as the upstream's answer, through
  // its own cookie store (context.request shares it), and keeps the
  // broker's callback URL instead of following it.
  const page = await newPage(t);
  await page.goto(`${CLIENT_URL}/start`);
  await page.waitForURL(`${BROKER_URL}/login?**`);
  const [binding] = (await page.context().cookies(BROKER_URL)).filter((c) => c.name === "broker_browser");
  assert.ok(binding, "/authorize gave the browser its binding cookie");
  assert.equal(binding.httpOnly, true);
  assert.equal(binding.sameSite, "Lax");
  assert.equal(binding.expires, -1, "the binding cookie goes when the browser closes");
  await page.fill("#email", "sam@corp.example.com");
  await page.press("#email", "Enter");
  await page.waitForSelector("h1:has-text('Continue to Corp SSO')");
  const fields = await page.$$eval('form[action="/login/connector"] input[type=hidden]',
    (inputs) => Object.fromEntries(inputs.map((i) => [i.name, i.value])));
  const toUpstream = await page.context().request.post(`${BROKER_URL}/login/connector`, { form: fields, maxRedirects: 0 });
  assert.equal(toUpstream.status(), 303);
  const back = await page.context().request.get(toUpstream.headers().location, { maxRedirects: 0 });
  const callback = back.headers().location;
  assert.match(callback, /\/callback\/auth0\?.*code=/, "the upstream sends the browser back with a code");

  // Another browser opening that callback (a victim sent the link) is
  // refused: no code, no session.
  const other = await newPage(t);
  const refused = await other.goto(callback);
  assert.equal(refused.status(), 403);
  assert.equal(await other.textContent("h1"), "Sign-in started in another browser");
  assert.match(await other.textContent(".lead"), /start again/);
  assert.deepEqual((await other.context().cookies(BROKER_URL)).filter((c) => c.name === "broker_session"), [], "no session for the other browser");
  await axe(other, "started in another browser");
  await shot(other, "16-started-in-another-browser");

  // The browser that started it finishes: its binding cookie crosses the
  // upstream's redirect back.
  await page.goto(callback);
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Signed in");
  assert.equal(await page.textContent('[data-claim="idp"]'), "auth0");
});

test("without JavaScript the code login still works", async (t) => {
  const page = await newPage(t, { javaScriptEnabled: false });
  await page.goto(`${CLIENT_URL}/start`);
  await page.fill("#email", "nojs@example.com");
  await page.press("#email", "Enter");
  await page.waitForURL(`${BROKER_URL}/login/code?**`);
  assert.equal(await page.isDisabled("#resend"), true, "the cool-down disables resend without the script");
  await page.fill("#code", await mailbox("nojs@example.com"));
  await page.press("#code", "Enter");
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent('[data-claim="email"]'), "nojs@example.com");
});

test("an unknown or expired sign-in and the signed-out page say what happened", async (t) => {
  const page = await newPage(t);
  const res = await page.goto(`${BROKER_URL}/login?id=expired-or-unknown`);
  assert.equal(res.status(), 404);
  assert.equal(await page.textContent("h1"), "This sign-in has expired");
  assert.match(await page.textContent(".lead"), /go back to the application/i);
  await axe(page, "error");
  await shot(page, "09-error-expired");

  await page.goto(`${BROKER_URL}/end_session`);
  assert.equal(await page.textContent("h1"), "You are signed out");
  await axe(page, "signed out");
  await shot(page, "10-signed-out");
});

test("German from Accept-Language and from ui_locales", async (t) => {
  const page = await newPage(t, { locale: "de-DE" });
  await page.goto(`${CLIENT_URL}/start`);
  await page.waitForURL(`${BROKER_URL}/login?**`);
  assert.equal(await page.getAttribute("html", "lang"), "de");
  assert.equal(await page.textContent("h1"), "Anmelden");
  await axe(page, "login (de)");
  await shot(page, "11-login-de");

  const en = await newPage(t, { locale: "en-US" });
  await en.goto(`${CLIENT_URL}/start?ui_locales=de`);
  await en.waitForURL(`${BROKER_URL}/login?**`);
  assert.equal(await en.textContent("h1"), "Anmelden", "ui_locales wins over Accept-Language");
  await en.fill("#email", "ulla@example.com");
  await en.press("#email", "Enter");
  await en.waitForURL(`${BROKER_URL}/login/code?**`);
  assert.equal(await en.textContent("h1"), "Sehen Sie in Ihr Postfach");
  await axe(en, "code (de)");
  await shot(en, "12-code-de");
});

test("dark mode on a phone", async (t) => {
  const page = await newPage(t, { colorScheme: "dark", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await page.goto(`${CLIENT_URL}/start`);
  await page.waitForURL(`${BROKER_URL}/login?**`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "no horizontal scrolling on a phone");
  await axe(page, "login (dark, phone)");
  await shot(page, "13-login-dark-phone");
  await page.fill("#email", "dana@example.com");
  await page.press("#email", "Enter");
  await page.waitForURL(`${BROKER_URL}/login/code?**`);
  await axe(page, "code (dark, phone)");
  await shot(page, "14-code-dark-phone");
  await page.goto(`${CLIENT_URL}/start`);
  await page.fill("#email", "sam@corp.example.com");
  await page.press("#email", "Enter");
  await page.waitForSelector("h1:has-text('Continue to')");
  await axe(page, "interstitial (dark, phone)");
  await shot(page, "15-interstitial-dark-phone");
});

// signInAs signs email in with a one-time code from the test client's
// /start (query: which client, which language) and waits for url.
async function signInAs(page, email, query, url) {
  await page.goto(`${CLIENT_URL}/start?${query}`);
  await page.waitForURL(`${BROKER_URL}/login?**`);
  await page.fill("#email", email);
  await page.press("#email", "Enter");
  await page.waitForURL(`${BROKER_URL}/login/code?**`);
  await page.fill("#code", await mailbox(email)); // six digits submit on their own
  await page.waitForURL(url);
}

test("a third-party client asks for consent; connected apps takes it back", async (t) => {
  const page = await newPage(t);
  await signInAs(page, "cora@example.com", "client=third-party", `${BROKER_URL}/consent?**`);
  assert.equal(await page.textContent("h1"), "Allow Helpful Agent to act for you?");
  assert.match(await page.textContent(".facts"), /agent/);
  assert.match(await page.textContent("main"), /See your email address/);
  await axe(page, "consent");
  await shot(page, "17-consent");
  await page.emulateMedia({ colorScheme: "dark" });
  await axe(page, "consent (dark)");
  await shot(page, "18-consent-dark");
  await page.emulateMedia({ colorScheme: "light" });

  await page.click("button[value=allow]");
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Signed in");

  // Not remembered for this client: it is public and redirects to a
  // loopback address, which any program on the machine could listen on
  // under its client id (RFC 8252 section 8.6), so it asks each time.
  await page.goto(`${CLIENT_URL}/start?client=third-party`);
  await page.waitForURL(`${BROKER_URL}/consent?**`);
  await page.click("button[value=allow]");
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Signed in");

  await page.goto(`${BROKER_URL}/account/apps`);
  assert.equal(await page.textContent("h1"), "Connected apps");
  assert.match(await page.textContent(".app h2"), /Helpful Agent/);
  await axe(page, "connected apps");
  await shot(page, "19-apps");
  await page.emulateMedia({ colorScheme: "dark" });
  await axe(page, "connected apps (dark)");
  await page.emulateMedia({ colorScheme: "light" });
  await page.click("button:has-text('Revoke access')");
  await page.waitForURL(`${BROKER_URL}/account/apps?revoked=1`);
  assert.match(await page.textContent(".notice"), /Access revoked/);
  assert.match(await page.textContent("main"), /No application has access/);
  await axe(page, "connected apps after revoking");
  await shot(page, "20-apps-revoked");

  // Taken back: the client must ask again.
  await page.goto(`${CLIENT_URL}/start?client=third-party`);
  await page.waitForURL(`${BROKER_URL}/consent?**`);
});

test("consent and connected apps in German, dark and light; deny tells the client", async (t) => {
  const page = await newPage(t, { locale: "de-DE", colorScheme: "dark" });
  const signedOut = await page.goto(`${BROKER_URL}/account/apps`);
  assert.equal(signedOut.status(), 200);
  assert.match(await page.textContent(".lead"), /nicht angemeldet/);
  await axe(page, "connected apps signed out (de, dark)");
  await shot(page, "21-apps-signed-out-de-dark");

  await signInAs(page, "dora@example.com", "client=third-party", `${BROKER_URL}/consent?**`);
  assert.equal(await page.getAttribute("html", "lang"), "de");
  assert.equal(await page.textContent("h1"), "Helpful Agent erlauben, in Ihrem Namen zu handeln?");
  await axe(page, "consent (de, dark)");
  await shot(page, "22-consent-de-dark");
  await page.emulateMedia({ colorScheme: "light" });
  await axe(page, "consent (de)");
  await shot(page, "23-consent-de");

  await page.click("button[value=deny]");
  await page.waitForURL(`${CLIENT_URL}/callback?**`);
  assert.equal(await page.textContent("h1"), "Sign-in failed");
  assert.match(await page.textContent("#error"), /^access_denied/);

  await page.goto(`${BROKER_URL}/account/apps`);
  assert.equal(await page.textContent("h1"), "Verbundene Apps");
  assert.match(await page.textContent("main"), /Keine Anwendung hat Zugriff/);
  await axe(page, "connected apps (de)");
  await page.emulateMedia({ colorScheme: "dark" });
  await axe(page, "connected apps (de, dark)");
  await shot(page, "24-apps-de-dark");
});

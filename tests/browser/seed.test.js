// The administrator's guide, steps 4 and 5, in a real Chromium: log in, Settings >
// Integrations, edit Azure User Sync, a bad GUID and its field error, good values, Update
// Settings, Test connection, Preview, the rocket, users appear; then the deletion threshold's
// held run with "Confirm and apply", and the Dutch pages — as the administrator of one of two
// organisations; and the platform page of a platform operator.
//
// Everything runs on 127.0.0.1: graph-sim (the simulated Entra tenant) and `safegpt serve`
// are started here as processes. Screenshots go to $SHOTS (default ./screenshots).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "../..");
const SAFEGPT = process.env.SAFEGPT_BIN || path.join(ROOT, "target/debug/safegpt");
const GRAPH_SIM = process.env.GRAPH_SIM_BIN || path.join(ROOT, "target/debug/graph-sim");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SHOTS || path.join(__dirname, "screenshots");
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
const ADMIN = "admin@example.org";
const OPERATOR = "operator@example.org";
const PASSWORD = "correct horse battery staple";

const children = [];

/** Starts a process and resolves with its first stdout lines (until `until` returns true). */
function start(cmd, args, env, until) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    const lines = [];
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${lines.join("\n")}`)), 20000);
    rl.on("line", (line) => {
      lines.push(line);
      if (until(lines)) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
    child.on("exit", (code) => reject(new Error(`${cmd} exited with ${code}: ${lines.join("\n")}`)));
  });
}

/** The group with the most users, counting nested groups; and the one with the fewest. */
function groupsBySize(tenant) {
  const groups = new Map(tenant.groups.map((g) => [g.id, g.members]));
  const users = new Set(tenant.users.map((u) => u.id));
  const size = (root) => {
    const seen = new Set([root]);
    const found = new Set();
    const stack = [root];
    while (stack.length) {
      for (const m of groups.get(stack.pop()) || []) {
        if (users.has(m)) found.add(m);
        else if (groups.has(m) && !seen.has(m)) { seen.add(m); stack.push(m); }
      }
    }
    return found.size;
  };
  const sorted = [...groups.keys()].map((id) => [size(id), id]).filter(([n]) => n > 0).sort((a, b) => a[0] - b[0]);
  return { largest: sorted[sorted.length - 1][1], smallest: sorted[0][1] };
}

let env;
let browser;

test.before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const simLines = await start(GRAPH_SIM, ["--listen", "127.0.0.1:0",
    "--generate", "users=150,groups=8,nesting=3,guests=8,disabled=5,seed=42"], {}, (l) => l.length >= 4);
  const field = (key) => simLines.find((l) => l.startsWith(key + " ")).split(" ")[1];
  const simUrl = simLines[0].split(" ")[2];
  const tenant = await (await fetch(`${simUrl}/_sim/tenant`)).json();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "safegpt-browser-"));
  // A platform of two organisations: the seed's administrator administers `acme` (its pages
  // are the guide's, exactly), and a platform operator watches both.
  const cli = (args, input) => {
    const done = spawnSync(SAFEGPT, ["--data-dir", dataDir, ...args], { input, encoding: "utf8" });
    assert.equal(done.status, 0, done.stderr);
  };
  cli(["orgs", "create", "--slug", "acme", "--name", "Acme"]);
  cli(["--org", "acme", "admin", "create", "--email", ADMIN, "--password-stdin"], PASSWORD + "\n");
  cli(["admin", "create", "--platform", "--email", OPERATOR, "--password-stdin"], PASSWORD + "\n");
  const serveLines = await start(SAFEGPT, ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0"], {},
    (l) => l.some((x) => x.startsWith("listening on ")));
  const base = serveLines.find((x) => x.startsWith("listening on ")).split(" ")[2];
  env = { simUrl, base, tenantId: field("tenant-id"), clientId: field("client-id"), secret: field("client-secret"),
    ...groupsBySize(tenant) };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

test.after(async () => {
  if (browser) await browser.close();
  for (const child of children) child.kill();
});

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function logIn(page) {
  await page.goto(env.base + "/");
  await page.waitForURL(/\/login/);
  await page.locator("#email").fill(ADMIN);
  await page.locator("#password").fill(PASSWORD);
  await page.locator("form[action='/login'] button[type=submit]").click();
  await page.waitForURL(/\/settings\/integrations/);
}

/** The Azure User Sync form of the seed, filled in, with graph-sim as custom endpoints under Advanced. */
async function fillAzureForm(page, { tenantId, groupId, threshold }) {
  await page.getByLabel("Active", { exact: true }).check();
  await page.getByLabel("Tenant Id").fill(tenantId);
  await page.getByLabel("Client Id").fill(env.clientId);
  await page.locator("#client_secret").fill(env.secret);
  await page.getByLabel("Group Id").fill(groupId);
  await page.getByLabel("Automatically disable users (if not in group)").check();
  await page.getByLabel("Automatically remove users (if disabled)").check();
  await page.getByLabel("Remove after days").fill("14");
  await page.locator("details.advanced").evaluate((details) => { details.open = true; });
  await page.locator("#cloud").selectOption("custom");
  await page.locator("#login_url").fill(env.simUrl);
  await page.locator("#graph_url").fill(env.simUrl);
  if (threshold) {
    await page.locator("#threshold_count").fill(String(threshold));
    await page.locator("#threshold_percent").fill(String(threshold));
  }
}

async function waitForRunToFinish(page) {
  // The page polls the API and reloads itself when the run ends.
  await page.waitForFunction(() => {
    const status = document.querySelector("#run-status");
    return status && !status.classList.contains("running");
  }, null, { timeout: 30000 });
  return (await page.locator("#run-status").getAttribute("class")).replace("badge", "").trim();
}

test("seed steps 4 and 5: configure Azure User Sync, test, preview, rocket, users appear", async () => {
  const page = await browser.newPage({ locale: "en-GB" });
  await logIn(page);

  // Settings > Integrations, as in the seed's screenshot.
  const rows = page.locator("table tbody tr");
  assert.deepEqual(await rows.locator("strong").allTextContents(),
    ["Office Add-in", "Azure User Sync", "Google Search", "OpenZaak"]);
  assert.deepEqual(await rows.locator("td:nth-child(2)").allTextContents(), ["Included", "Included", "Included", "Included"]);
  await shot(page, "01-integrations");

  await page.locator("#integration-azure_user_sync").getByLabel("Edit").click();
  await page.waitForURL(/\/settings\/integrations\/azure$/);
  assert.equal(await page.getByLabel("Group Id").getAttribute("placeholder"), "ex. f3e5e6c4-7f2d-4a4c-9b2c-8e2f3a8c01d2");
  assert.equal(await page.getByLabel("Remove after days").inputValue(), "14", "the default is 14 days");

  // A bad GUID: the field says what is wrong and nothing is saved.
  await fillAzureForm(page, { tenantId: "not-a-guid", groupId: env.largest });
  const secret = page.locator("#client_secret");
  assert.equal(await secret.getAttribute("type"), "password");
  await page.getByRole("button", { name: "Show what I type" }).click();
  assert.equal(await secret.getAttribute("type"), "text", "the eye reveals what is being typed");
  assert.equal(await secret.inputValue(), env.secret);
  await page.getByRole("button", { name: "Update Settings" }).click();
  await page.locator("#tenant_id-error").waitFor();
  assert.match(await page.locator("#tenant_id-error").textContent(), /neither a GUID nor a domain name/);
  assert.equal(await page.getByLabel("Tenant Id").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#client_secret").inputValue(), "", "the secret is never sent back to the browser");
  assert.match(await page.locator("#client_secret-state").textContent(), /No secret is stored/);
  await shot(page, "02-azure-form-field-error");

  // Good values: Update Settings saves and returns to the integrations.
  await fillAzureForm(page, { tenantId: env.tenantId, groupId: env.largest });
  await page.getByRole("button", { name: "Update Settings" }).click();
  await page.waitForURL(/notice=saved/);
  await page.locator("#integration-azure_user_sync").getByLabel("Edit").click();
  assert.match(await page.locator("#client_secret-state").textContent(), /A secret is stored/);
  assert.equal(await page.locator("#client_secret").inputValue(), "");
  assert.ok(!(await page.content()).includes(env.secret), "the stored secret is not in the page");
  await shot(page, "03-azure-form-saved");

  // Test connection: token, users, group, each green.
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.locator("#test-summary").waitFor();
  assert.match(await page.locator("#test-summary").getAttribute("class"), /\bok\b/);
  assert.equal(await page.locator("#checks tr.check.ok").count(), 3);
  assert.equal(await page.locator("#checks tr.check.bad").count(), 0);
  await shot(page, "04-test-connection");

  // Preview: the plan, user by user, before anything changes.
  await page.goto(env.base + "/settings/integrations/azure");
  await page.getByRole("button", { name: "Preview" }).click();
  await page.locator("#preview-summary").waitFor();
  const planned = await page.locator("#changes tr.change.create").count();
  assert.ok(planned > 10, `the preview plans creates (${planned})`);
  await shot(page, "05-preview");

  // The rocket: live progress, then the result; the users appear.
  await page.goto(env.base + "/settings/integrations");
  await page.locator("#integration-azure_user_sync").getByLabel("Start sync").click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  assert.equal(await waitForRunToFinish(page), "succeeded");
  assert.match(await page.locator("#run-summary").textContent(), new RegExp(`${planned} created`));
  await shot(page, "06-sync-run");

  await page.locator("nav").getByRole("link", { name: "Users" }).click();
  assert.equal(await page.locator("#users tr.user").count(), Math.min(planned, 100));
  assert.match(await page.locator("#seats").textContent(), new RegExp(`${planned} / unlimited`));
  await shot(page, "07-users");
  await page.close();
});

test("a sync that would disable many users waits for Confirm and apply", async () => {
  const page = await browser.newPage({ locale: "en-GB" });
  await logIn(page);
  await page.goto(env.base + "/settings/integrations/azure");
  // Scope to the smallest group: most users would be disabled at once.
  await fillAzureForm(page, { tenantId: env.tenantId, groupId: env.smallest, threshold: 5 });
  await page.getByRole("button", { name: "Update Settings" }).click();
  await page.waitForURL(/notice=saved/);
  await page.locator("#integration-azure_user_sync").getByLabel("Start sync").click();
  await page.waitForURL(/\/runs\//);
  assert.equal(await waitForRunToFinish(page), "held");
  await page.locator("#held-explain").waitFor();
  const wouldDisable = await page.locator("#changes tr.change.disable").count();
  assert.ok(wouldDisable > 5, `the held run lists who it would disable (${wouldDisable})`);
  await shot(page, "08-held-run");

  await page.goto(env.base + "/users?status=disabled");
  assert.equal(await page.locator("#users tr.user").count(), 0, "nobody is disabled before the confirmation");
  await page.goBack();
  await page.getByRole("button", { name: "Confirm and apply" }).click();
  await page.waitForURL(/\/runs\//);
  assert.equal(await waitForRunToFinish(page), "succeeded");
  assert.match(await page.locator("#run-summary").textContent(), new RegExp(`${wouldDisable} disabled`));

  await page.goto(env.base + "/users?status=disabled");
  assert.equal(await page.locator("#users tr.user").count(), Math.min(wouldDisable, 100));
  const first = page.locator("#users tr.user").first();
  assert.match(await first.textContent(), /no longer in the group/);
  assert.match(await first.locator(".removal").textContent(), /removed on \d{4}-\d{2}-\d{2}/);
  await shot(page, "09-users-disabled");

  // An administrator's own decision: enable one user by hand.
  await first.getByRole("button", { name: "Enable" }).click();
  await page.waitForURL(/\/users/);
  assert.equal(await page.locator("#users tr.user").count(), Math.min(wouldDisable - 1, 100));
  await page.close();
});

test("the pages speak Dutch to a Dutch browser, and the switch changes it", async () => {
  const context = await browser.newContext({ locale: "nl-NL" });
  const page = await context.newPage();
  await page.goto(env.base + "/login");
  assert.equal(await page.locator("h1").textContent(), "Inloggen");
  await page.locator("#email").fill(ADMIN);
  await page.locator("#password").fill(PASSWORD);
  await page.getByRole("button", { name: "Inloggen" }).click();
  await page.waitForURL(/\/settings\/integrations/);
  assert.deepEqual(await page.locator("table th").allTextContents(), ["Naam", "Licentie", "Laatst bijgewerkt", "Acties"]);
  await page.locator("#integration-azure_user_sync").getByLabel("Bewerken").click();
  await page.getByLabel("Actief").waitFor();
  assert.ok(await page.getByLabel("Actief").isChecked());
  assert.equal(await page.getByRole("button", { name: "Instellingen bijwerken" }).count(), 1);
  await shot(page, "10-azure-form-dutch");
  await page.getByRole("link", { name: "English" }).click();
  await page.getByLabel("Active").waitFor();
  assert.equal(await page.getByRole("button", { name: "Update Settings" }).count(), 1);
  await context.close();
});

test("webhooks: an endpoint's secret shown once, Send test and its delivery log; the alert addresses", async () => {
  // A receiver on 127.0.0.1 that accepts every message (the Rust tests verify signatures
  // with the Standard Webhooks library; here it is the page that is tested).
  const http = require("node:http");
  const received = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", () => { received.push({ id: req.headers["webhook-id"], body }); res.writeHead(204).end(); });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const hook = `http://127.0.0.1:${receiver.address().port}/safegpt`;
  const page = await browser.newPage({ locale: "en-GB" });
  await logIn(page);
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.waitForURL(/\/settings\/webhooks$/);
  await page.getByLabel("Endpoint URL").fill(hook);
  await page.getByLabel("user.disabled").check();
  await page.getByLabel("sync.held").check();
  await page.getByRole("button", { name: "Add endpoint" }).click();
  const secret = (await page.locator("#new-secret").textContent()).trim();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
  await shot(page, "12-webhook-created");
  const row = page.locator("#webhooks tbody tr", { hasText: hook });
  assert.match(await row.textContent(), /user\.disabled, sync\.held/);
  await row.getByRole("button", { name: "Send test" }).click();
  await page.locator("#test-result").waitFor();
  assert.match(await page.locator("#test-result").textContent(), /delivered \(HTTP 204\)/);
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  assert.equal(received.length, 1);
  assert.equal(JSON.parse(received[0].body).type, "webhook.test");
  await page.locator("#webhooks tbody tr", { hasText: hook }).getByRole("link", { name: "Delivery log" }).click();
  await page.locator("#deliveries tbody tr").first().waitFor();
  assert.match(await page.locator("#deliveries tbody tr").first().textContent(), new RegExp(received[0].id));
  await shot(page, "13-webhook-deliveries");

  // The alert addresses live in the form's Advanced part.
  await page.goto(env.base + "/settings/integrations/azure");
  await page.locator("details.advanced").evaluate((details) => { details.open = true; });
  await page.getByLabel("Notification addresses").fill("ops@example.org\nnot an address");
  await page.getByRole("button", { name: "Update Settings" }).click();
  await page.locator("#notify-error").waitFor();
  await page.getByLabel("Notification addresses").fill("ops@example.org\nit@example.org");
  await page.getByRole("button", { name: "Update Settings" }).click();
  await page.waitForURL(/notice=saved/);
  await page.getByRole("link", { name: "Notifications" }).click();
  await page.waitForURL(/\/settings\/notifications$/);
  assert.match(await page.locator("body").textContent(), /SAFEGPT_SMTP_URL/);
  await page.close();
  receiver.close();
});

test("a platform operator sees every organisation's health, creates one and opens one on the record", async () => {
  const page = await browser.newPage({ locale: "en-GB" });
  await page.goto(env.base + "/login");
  await page.locator("#email").fill(OPERATOR);
  await page.locator("#password").fill(PASSWORD);
  await page.locator("form[action='/login'] button[type=submit]").click();
  await page.waitForURL(/\/platform$/);
  const acme = page.locator("tr[data-org=acme]");
  // After the walk above, acme's newest run is the confirmed held run's follow-up.
  assert.match(await acme.locator(".last-run").textContent(), /^(succeeded|held|cancelled|confirmed)/, "acme's runs show");
  assert.equal(await page.locator("tr[data-org=default] .last-run").textContent(), "none");
  assert.ok(!(await page.content()).includes("@contoso.com"), "no user on the platform page");
  await shot(page, "11-platform");

  await page.locator("#create-org #name").fill("Beta Corp");
  await page.locator("#create-org #slug").fill("beta");
  await page.locator("#create-org button[type=submit]").click();
  await page.waitForURL(/notice=created/);
  assert.equal(await page.locator("tr[data-org=beta] td").first().textContent(), "beta");

  await acme.getByRole("button", { name: "Open" }).click();
  await page.waitForURL(/\/settings\/integrations/);
  assert.equal(await page.locator("#org").textContent(), "acme");
  await page.goto(env.base + "/audit");
  assert.ok((await page.locator("body").textContent()).includes("org.opened_by_platform"), "acme's audit log says so");
  await page.getByRole("link", { name: "Platform" }).click();
  await page.waitForURL(/\/platform$/);
  await page.close();
});

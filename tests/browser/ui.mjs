// The web page as a person uses it, in Debian's chromium driven by playwright-core (tests/integration/browser.rs
// starts the daemon on the sample clip and runs this). Every step asserts what the person would see; a screenshot
// of each page goes to $FW_SHOTS. Prints one JSON line at the end: what it did.
//
//   FW_URL=http://127.0.0.1:PORT FW_KEY=… FW_SHOTS=DIR FW_PHOTO=photo.jpg FW_NAME=person node tests/browser/ui.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.FW_URL;
const key = process.env.FW_KEY;
const shots = process.env.FW_SHOTS;
const photo = process.env.FW_PHOTO;
const newName = process.env.FW_NAME || "the-stranger";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base || !key || !shots || !photo) {
  console.error("set FW_URL, FW_KEY, FW_SHOTS and FW_PHOTO");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

function check(ok, what) {
  if (!ok) {
    throw new Error(what);
  }
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const done = {};
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") {
      consoleErrors.push(`${m.text()} at ${m.location().url} (${page.url()})`);
    }
  });
  page.on("dialog", (d) => d.accept());
  const failures = [];
  page.on("response", (r) => {
    if (r.status() >= 400) {
      failures.push(`${r.status()} ${r.url()}`);
    }
  });
  const shot = async (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // Not logged in: every page leads to the login form.
  await page.goto(`${base}/ui/live`);
  check(page.url().endsWith("/ui/login"), `not sent to the login page: ${page.url()}`);
  await shot("login");

  // A wrong key is refused.
  await page.fill("#key", "not-the-key");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  check(wrong.status() === 401, `a wrong key answered ${wrong.status()}`);
  check((await page.textContent("[role=alert]")).includes("not one of"), "no message for a wrong key");
  done.wrong_key = wrong.status();

  // The right key: the live page, with every camera's picture.
  await page.fill("#key", key);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  check(page.url().endsWith("/ui/live"), `not on the live page after logging in: ${page.url()}`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "facewatch_session");
  check(session && session.httpOnly && session.sameSite === "Strict", `the session cookie is not HttpOnly + SameSite=Strict: ${JSON.stringify(session)}`);
  await page.waitForFunction(() => {
    const img = document.querySelector(".live img");
    return img && img.naturalWidth > 0;
  }, null, { timeout: 30000 });
  await page.waitForFunction(() => !document.querySelector("[data-in-view] li") || !document.querySelector("[data-in-view] li").textContent.includes("…"), null, { timeout: 10000 });
  await shot("live");

  // Strangers: the clip's stranger appears once seen well enough (the sample clip loops).
  let label = null;
  for (let i = 0; i < 60 && !label; i++) {
    await page.goto(`${base}/ui/strangers`);
    label = await page.getAttribute(".stranger", "data-label").catch(() => null);
    if (!label) {
      await page.waitForTimeout(1000);
    }
  }
  check(label && label.startsWith("stranger-"), "no stranger appeared within a minute");
  await page.waitForFunction(() => [...document.querySelectorAll(".stranger img")].every((i) => i.complete && i.naturalWidth > 0));
  await shot("strangers");
  await page.click(`.stranger[data-label="${label}"] h2 a`);
  await page.waitForFunction(() => [...document.querySelectorAll("img.scene")].every((i) => i.complete && i.naturalWidth > 0));
  await shot("stranger");
  done.stranger = label;

  // A form posted without the session's CSRF token is refused, and so is one from another origin.
  const noToken = await page.request.post(`${base}/ui/strangers/${label}/forget`, { form: { nothing: "1" } });
  check(noToken.status() === 403, `a form without its token answered ${noToken.status()}`);
  const token = await page.getAttribute("input[name=csrf]", "value");
  const foreign = await page.request.post(`${base}/ui/strangers/${label}/forget`, { form: { csrf: token }, headers: { Origin: "http://evil.example" } });
  check(foreign.status() === 403, `a form from another origin answered ${foreign.status()}`);
  done.csrf_refused = [noToken.status(), foreign.status()];

  // Name them.
  await page.fill(`form[action$="/name"] input[name=name]`, newName);
  await Promise.all([page.waitForNavigation(), page.click(`form[action$="/name"] button`)]);
  check((await page.textContent("[role=status]")).includes(`is now ${newName}`), "no confirmation of the name");
  done.named = newName;

  // The daemon says the name the next time they come (the clip loops): on the live page, and in the events.
  let seen = false;
  for (let i = 0; i < 60 && !seen; i++) {
    await page.goto(`${base}/ui/events?person=${encodeURIComponent(newName)}`);
    seen = (await page.locator("table.timeline tbody tr td.known, table.timeline tbody tr a.known").count()) > 0;
    if (!seen) {
      await page.waitForTimeout(1000);
    }
  }
  check(seen, `${newName} was not named within a minute of being named`);
  await page.waitForFunction(() => [...document.querySelectorAll(".timeline img")].every((i) => i.complete && i.naturalWidth > 0));
  await shot("events");

  // People: the new person with the faces they were named from.
  await page.goto(`${base}/ui/people`);
  check((await page.locator(`a[href="/ui/people/${encodeURIComponent(newName)}"]`).count()) === 1, `${newName} is not among the people`);
  await shot("people");
  await page.click(`a[href="/ui/people/${encodeURIComponent(newName)}"]`);
  const photos = await page.locator("img.face").count();
  check(photos >= 1, "the person has no photo");
  await page.waitForFunction(() => [...document.querySelectorAll("img.face")].every((i) => i.complete && i.naturalWidth > 0));
  await shot("person");
  done.photos = photos;

  // Check a photo.
  await page.goto(`${base}/ui/check`);
  await page.setInputFiles("#photo", photo);
  await Promise.all([page.waitForNavigation(), page.click("form[action='/ui/check'] button")]);
  const faces = await page.locator("table tbody tr").count();
  check(faces >= 1, "no face found in the checked photo");
  done.checked_faces = faces;
  done.checked_names = await page.locator("table tbody tr td:nth-child(2)").allTextContents();
  await shot("check");

  // Keyboard: the navigation is reachable with Tab, and the focus is visible.
  await page.goto(`${base}/ui/people`);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  check(focused === "A", `Tab does not reach the navigation (focus on ${focused})`);

  // A phone's width: still readable (nothing wider than the screen).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/ui/strangers`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page is ${overflow}px wider than a phone`);
  await shot("phone");

  // Log out: the session is gone.
  await Promise.all([page.waitForNavigation(), page.click("header form button")]);
  check(page.url().endsWith("/ui/login"), `not on the login page after logging out: ${page.url()}`);
  await page.goto(`${base}/ui/live`);
  check(page.url().endsWith("/ui/login"), "the session survived logging out");
  // The refused login (401) is the only failed answer the page itself asked for.
  const unexpected = failures.filter((f) => !f.startsWith("401 ") || !f.endsWith("/ui/login"));
  check(unexpected.length === 0, `failed answers: ${unexpected.join(" | ")}`);
  check(consoleErrors.length === failures.length, `console errors: ${consoleErrors.length} for ${failures.length} failed answers: ${failures.join(" | ")}: ${consoleErrors.join(" | ")}`);
  done.ok = true;
} catch (e) {
  done.ok = false;
  done.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(done));
process.exit(done.ok ? 0 : 1);

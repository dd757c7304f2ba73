/* Login: exchange name and password for a bearer token, kept in sessionStorage. */
"use strict";

/**
 * Where to go after login: `next` only if it is a dashboard page of this very origin.
 * Parsed as the browser would follow it (so `/\host`, `/%09/host`, `//host`, `javascript:`
 * all resolve to another origin or scheme and are refused); a county town's dashboard page
 * (`/towns/{town}/dashboard/...`) too; anything else goes to the overview.
 */
function safeNext(next) {
  const home = "/dashboard/";
  if (!next) return home;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch (e) {
    return home;
  }
  if (url.origin !== location.origin) return home;
  // A county town's pages are under /towns/{town}/dashboard/ (docs/scale.md, "A county").
  const page = url.pathname.replace(/^\/towns\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(?=\/dashboard(\/|$))/, "");
  if (page !== "/dashboard" && !page.startsWith("/dashboard/")) return home;
  return url.pathname + url.search + url.hash;
}

pg.page(async () => {
  const { t, $ } = pg;
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const username = $("#username").value.trim();
    const password = $("#password").value;
    $("#login-error").textContent = "";
    $("#login-button").disabled = true;
    try {
      const tok = await pg.api("/api/v1/auth/login", {
        method: "POST", form: { username, password }, noRedirect: true,
      });
      pg.saveSession(
        { token: tok.access_token, role: tok.role, name: username, expires_at: tok.expires_at },
        $("#keep").checked
      );
      location.href = safeNext(new URLSearchParams(location.search).get("next"));
    } catch (err) {
      $("#login-error").textContent =
        err.status === 401 ? t("auth.wrong") : err.status === 429 ? t("auth.throttled") : err.message;
    } finally {
      $("#login-button").disabled = false;
    }
  });
  $("#username").focus();
});

/* Login: exchange name and password for a bearer token, kept in sessionStorage. */
"use strict";

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
      const next = new URLSearchParams(location.search).get("next") || "/dashboard/";
      location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard/";
    } catch (err) {
      $("#login-error").textContent =
        err.status === 401 ? t("auth.wrong") : err.status === 429 ? t("auth.throttled") : err.message;
    } finally {
      $("#login-button").disabled = false;
    }
  });
  $("#username").focus();
});

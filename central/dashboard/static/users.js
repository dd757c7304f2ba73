/* Users (admin): who may log in, with which role; add a user. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  if (!pg.can("admin")) {
    pg.banner(t("users.admin_only"), "warn");
    return;
  }
  async function load() {
    const users = await pg.api("/api/v1/users");
    $("#users tbody").replaceChildren(...users.map((u) => el("tr", { "data-user": u.username },
      el("td", { text: u.username }), el("td", { text: t("role." + u.role) }),
      el("td", { text: fmt.dateTime(u.created_at) }), el("td", { text: u.disabled ? "✔" : "" }))));
  }
  $("#add-user").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await pg.api("/api/v1/users", { method: "POST", body: { username: f.get("username"), password: f.get("password"), role: f.get("role") } });
      e.target.reset();
      pg.banner(t("users.added"), "ok");
      await load();
    } catch (err) {
      pg.banner(t("users.add_failed") + ": " + err.message, "error");
    }
  });
  await load();
});

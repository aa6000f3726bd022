// The demo's todo page (a port of Brubeck's demo_autoapi page): static HTML
// whose plain JavaScript calls the AutoAPI at /todo/. List, add, tick
// (PATCH done) and delete; the todos live in SQLite, so a reload shows them
// again. Text from the API goes in through textContent, never as HTML.
#pragma once

#include <string_view>

namespace demo {

inline constexpr std::string_view kTodoPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Todos - brubeck AutoAPI</title>
<style>
  body { font: 16px/1.4 sans-serif; max-width: 32em; margin: 2em auto; }
  ul { list-style: none; padding: 0; }
  li { display: flex; gap: .5em; align-items: center; padding: .2em 0; }
  li.done span { text-decoration: line-through; color: #888; }
  li span { flex: 1; }
  #error { color: #b00; min-height: 1.4em; }
</style>
</head>
<body>
<h1>Todos</h1>
<form id="add">
  <input id="text" name="text" placeholder="What needs doing?" autocomplete="off" required>
  <button type="submit">Add</button>
</form>
<p id="error"></p>
<ul id="todos"></ul>
<p><small><span id="count">0</span> todos, served by <code>/todo/</code>
(<a href="/todo/_schema">schema</a>)</small></p>
<script>
"use strict";
const api = "/todo/";
const list = document.getElementById("todos");
const error = document.getElementById("error");

// One request to the API; a refusal shows its message (per field, if any).
async function call(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const reply = await fetch(url, options);
  const data = reply.status === 204 ? null : await reply.json();
  if (!reply.ok) {
    const fields = data && data.fields ? " (" + Object.entries(data.fields)
        .map(([k, v]) => k + ": " + v).join(", ") + ")" : "";
    throw new Error((data && data.error ? data.error : reply.statusText) + fields);
  }
  error.textContent = "";
  return data;
}

function show(todo) {
  const item = document.createElement("li");
  item.dataset.id = todo.id;
  item.className = todo.done ? "done" : "";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = todo.done;
  box.setAttribute("aria-label", "done");
  box.addEventListener("change", () => run(async () => {
    const changed = await call("PATCH", api + todo.id, { done: box.checked });
    item.className = changed.done ? "done" : "";
  }));
  const text = document.createElement("span");
  text.textContent = todo.text;
  const remove = document.createElement("button");
  remove.textContent = "Delete";
  remove.addEventListener("click", () => run(async () => {
    await call("DELETE", api + todo.id);
    item.remove();
    count();
  }));
  item.append(box, text, remove);
  list.append(item);
}

function count() {
  document.getElementById("count").textContent = list.children.length;
}

function run(action) {
  action().catch((e) => { error.textContent = e.message; });
}

document.getElementById("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  run(async () => {
    show(await call("POST", api, { text: input.value, order: list.children.length }));
    input.value = "";
    count();
  });
});

run(async () => {
  for (const todo of await call("GET", api + "?limit=1000")) show(todo);
  count();
});
</script>
</body>
</html>
)html";

}  // namespace demo

// Small DOM helpers: elements are built with textContent only, never innerHTML, so model
// output and titles cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A <select> of model ids; `blank` adds a first option with an empty value. */
export function modelSelect(ids, selected, attrs = {}, blank = null) {
  const options = ids.map((id) => h("option", { value: id, selected: id === selected }, id));
  if (selected && !ids.includes(selected)) {
    options.unshift(h("option", { value: selected, selected: true }, selected));
  }
  if (blank !== null) options.unshift(h("option", { value: "", selected: !selected }, blank));
  return h("select", attrs, options);
}

let notice = null;

export function showError(error) {
  notice ??= document.getElementById("notice");
  notice.textContent = error instanceof Error ? error.message : String(error);
  notice.hidden = false;
}

export function clearError() {
  notice ??= document.getElementById("notice");
  notice.hidden = true;
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled field: the label names the control for screen readers and clicks. */
export function field(labelText, control) {
  control.id ||= nextId("f");
  return h("div", { class: "field" }, h("label", { for: control.id }, labelText), control);
}

/** An event handler that shows the error an action throws instead of losing it. */
export function guard(action) {
  return async (event) => {
    event?.preventDefault?.();
    clearError();
    try {
      await action(event);
    } catch (error) {
      showError(error);
    }
  };
}

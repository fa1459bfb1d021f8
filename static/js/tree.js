// The downline tree as a keyboard- and screen-reader-friendly ARIA tree.
// Without this file every toggle is a plain link to a page with that node open.
(function () {
  "use strict";

  function items(tree) {
    // Tree items in document order, skipping those inside a collapsed group.
    return Array.prototype.filter.call(
      tree.querySelectorAll('[role="treeitem"]'),
      function (item) { return !item.parentElement.closest("[hidden]"); }
    );
  }

  function focusItem(tree, item) {
    if (!item) return;
    tree.querySelectorAll('[role="treeitem"][tabindex="0"]').forEach(function (other) {
      other.setAttribute("tabindex", "-1");
    });
    item.setAttribute("tabindex", "0");
    item.focus();
  }

  function group(item) {
    return item.querySelector(':scope > [role="group"]');
  }

  function expand(item) {
    var children = group(item);
    if (!children) return;
    item.setAttribute("aria-expanded", "true");
    if (children.hasAttribute("data-loaded")) {
      children.hidden = false;
      return;
    }
    // Loaded once by htmx; collapsing later only hides the group, with no request.
    item.setAttribute("aria-busy", "true");
    htmx.trigger(item.querySelector(":scope > .node-row [data-toggle]"), "load-children");
  }

  function collapse(item) {
    var children = group(item);
    if (!children) return;
    item.setAttribute("aria-expanded", "false");
    children.hidden = true;
  }

  function toggle(item) {
    if (item.getAttribute("aria-expanded") === "true") collapse(item); else expand(item);
  }

  function setup(tree) {
    // One item is in the tab order: the deepest open one (the node the page opened at).
    var open = tree.querySelectorAll('[role="treeitem"][aria-expanded="true"]');
    var start = open.length ? open[open.length - 1] : tree.querySelector('[role="treeitem"]');
    if (start) start.setAttribute("tabindex", "0");

    tree.addEventListener("click", function (event) {
      var toggler = event.target.closest("[data-toggle]");
      if (!toggler) return;
      event.preventDefault();
      var item = toggler.closest('[role="treeitem"]');
      toggle(item);
      focusItem(tree, item);
    });

    tree.addEventListener("keydown", function (event) {
      var item = event.target.closest('[role="treeitem"]');
      if (!item || event.altKey || event.ctrlKey || event.metaKey) return;
      var visible = items(tree);
      var index = visible.indexOf(item);
      var expanded = item.getAttribute("aria-expanded");
      switch (event.key) {
        case "ArrowDown": focusItem(tree, visible[index + 1]); break;
        case "ArrowUp": focusItem(tree, visible[index - 1]); break;
        case "Home": focusItem(tree, visible[0]); break;
        case "End": focusItem(tree, visible[visible.length - 1]); break;
        case "ArrowRight":
          if (expanded === "false") expand(item);
          else if (expanded === "true") focusItem(tree, visible[index + 1]);
          break;
        case "ArrowLeft":
          if (expanded === "true") collapse(item);
          else focusItem(tree, item.parentElement.closest('[role="treeitem"]'));
          break;
        case "Enter":
        case " ":
          var link = item.querySelector(":scope > .node-row .node-name, :scope > a");
          if (link) link.click();
          break;
        default:
          return;
      }
      event.preventDefault();
    });

    tree.addEventListener("htmx:afterSwap", function (event) {
      var target = event.detail.target;
      if (target.getAttribute && target.getAttribute("role") === "group") {
        var item = target.closest('[role="treeitem"]');
        target.setAttribute("data-loaded", "");
        target.hidden = false;
        item.removeAttribute("aria-busy");
        item.setAttribute("aria-expanded", "true");
      }
    });
    // "Show more" replaces its own item: keep keyboard focus on the first new member.
    tree.addEventListener("htmx:beforeSwap", function (event) {
      var more = event.detail.target;
      if (more.classList && more.classList.contains("show-more")) {
        var previous = more.previousElementSibling;
        tree.addEventListener("htmx:afterSettle", function settle() {
          tree.removeEventListener("htmx:afterSettle", settle);
          var next = previous ? previous.nextElementSibling : null;
          if (next && document.activeElement === document.body) focusItem(tree, next);
        });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tree]").forEach(setup);
  });
})();

// Helpdesk pages, progressive enhancement only: every form works without JavaScript.
(function () {
  "use strict";

  // Ticket page: choosing a canned response fills the reply at once (without JavaScript the
  // "Insert" button reloads the page with ?canned=<id> and the server fills it in).
  document.querySelectorAll("select[data-canned-for]").forEach(function (select) {
    var target = document.getElementById(select.dataset.cannedFor);
    if (!target) { return; }
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      if (option && option.dataset.text !== undefined) {
        target.value = option.dataset.text;
        target.focus();
      }
    });
  });

  // New ticket: say which priority the chosen impact and urgency give, and mark it in the table.
  var form = document.querySelector("[data-priority-form]");
  if (form) {
    var impact = form.querySelector("[name=impact]");
    var urgency = form.querySelector("[name=urgency]");
    var preview = form.querySelector("[data-priority-preview]");
    var update = function () {
      form.querySelectorAll("td[data-priority]").forEach(function (cell) {
        var chosen = cell.dataset.impact === impact.value && cell.dataset.urgency === urgency.value;
        cell.classList.toggle("chosen", chosen);
        if (chosen && preview) {
          preview.textContent = "With this impact and urgency the priority is " + cell.dataset.priority + ".";
          preview.hidden = false;
        }
      });
    };
    if (impact && urgency) {
      impact.addEventListener("change", update);
      urgency.addEventListener("change", update);
      update();
    }
  }

  // Ticket list: one checkbox to select every ticket on the page.
  var all = document.querySelector("[data-select-all]");
  if (all) {
    var boxes = document.querySelectorAll("input[name=ticket_id]");
    all.hidden = boxes.length === 0;
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
    });
  }
}());

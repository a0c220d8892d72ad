// Asset form: show only the fieldsets that apply to the chosen kind. Without JavaScript every
// fieldset stays visible and the server refuses fields that do not apply.
(function () {
  "use strict";
  var FAMILY = {
    desktop: "computer", laptop: "computer", server: "computer",
    mobile_phone: "mobile", desk_phone: "desk_phone",
    "switch": "network", router: "network", access_point: "network"
  };
  var form = document.querySelector("[data-kind-form]");
  if (!form) { return; }
  var kindInput = form.querySelector("[name=kind]");
  function update() {
    var family = FAMILY[kindInput.value] || "";
    form.querySelectorAll("fieldset[data-family]").forEach(function (fieldset) {
      var other = fieldset.getAttribute("data-family").split(" ").indexOf(family) < 0;
      fieldset.hidden = other;
      fieldset.disabled = other;  // a disabled fieldset's inputs are not submitted
    });
  }
  kindInput.addEventListener("change", update);
  update();
})();

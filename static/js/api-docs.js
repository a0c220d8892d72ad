// Swagger UI against the local OpenAPI document; session cookies carry over to "Try it out".
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  var csrf = document.querySelector('meta[name="csrf-token"]');
  window.SwaggerUIBundle({
    url: node.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: function (request) {
      if (csrf) { request.headers["X-CSRFToken"] = csrf.content; }
      return request;
    }
  });
}());

// Starts Swagger UI on the OpenAPI document beside the page. A file of its own (not inline) so
// the pages' Content-Security-Policy can forbid inline scripts. validatorUrl: null keeps the
// validator badge, which would call a third-party service, from ever being shown.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapi,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
});

// The API's docs: Swagger UI over the service's own OpenAPI document (docs/openapi.json, the
// one GET /api/v1/saga/openapi.json serves), every route listed and expanded by tag.
window.ui = SwaggerUIBundle({
  url: "docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  tryItOutEnabled: false,
  validatorUrl: null, // nothing is sent elsewhere
});

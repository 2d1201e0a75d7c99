/* Starts the API reference viewer named in the page's #ll-docs data (no inline script: see web/docs.py). */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("ll-docs").textContent);
  if (config.viewer === "swagger-ui") {
    window.ui = window.SwaggerUIBundle({
      url: config.openapi_url,
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
      layout: "BaseLayout",
    });
  } else if (config.viewer === "redoc") {
    window.Redoc.init(config.openapi_url, {}, document.getElementById("redoc"));
  }
})();

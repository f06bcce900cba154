// ReDoc's start-up, as a file: the page's CSP allows no inline script.
Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));

/* liveloop embed: <div data-liveloop-show="shw_…" data-lang="th" data-token="…"></div> then load this script. */
(function () {
  var base = "__BASE__";
  var nodes = document.querySelectorAll("[data-liveloop-show]:not([data-liveloop-ready])");
  for (var i = 0; i < nodes.length; i++) {
    var node = nodes[i];
    node.setAttribute("data-liveloop-ready", "1");
    var url = base + "/live/" + encodeURIComponent(node.getAttribute("data-liveloop-show")) + "?embed=1";
    if (node.getAttribute("data-lang")) url += "&lang=" + encodeURIComponent(node.getAttribute("data-lang"));
    // A member token goes in the fragment: it never reaches server logs or referrers.
    if (node.getAttribute("data-token")) url += "#token=" + encodeURIComponent(node.getAttribute("data-token"));
    var frame = document.createElement("iframe");
    frame.src = url;
    frame.title = node.getAttribute("data-title") || "Live show";
    frame.allow = "autoplay; clipboard-write; camera; microphone; fullscreen";
    frame.style.cssText = "border:0;width:100%;height:" + (node.getAttribute("data-height") || "640px") + ";border-radius:12px;";
    node.appendChild(frame);
  }
})();

package watch

// pageHTML is the watch page. No inline script or style (the CSP forbids
// them); the script reads its settings from data attributes.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<link rel="icon" href="../_/icon.svg">
<link rel="stylesheet" href="../_/watch.css">
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Passcode}}
<form method="post" action="./" class="passcode">
<label for="passcode">This broadcast needs a passcode.</label>
<input id="passcode" name="passcode" type="password" autocomplete="off" required autofocus>
<button type="submit">Watch</button>
{{if .Wrong}}<p class="error" role="alert">Wrong passcode.</p>{{end}}
</form>
{{else}}
<p id="status" class="status" role="status" aria-live="polite">Loading…</p>
<div id="player" class="player" hidden>
<video id="video" controls playsinline preload="none"></video>
<button id="unmute" type="button" hidden>Sound on</button>
</div>
<p id="speakers" class="speakers"></p>
<p id="viewers" class="viewers"></p>
{{if .HLSJS}}<script src="../_/vendor/hls.min.js"></script>{{end}}
<script src="../_/watch.js"></script>
{{end}}
</main>
</body>
</html>
`

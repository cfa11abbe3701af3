// node-media-server 2.7.4 run the way PeerTube (server/lib/live/live-manager)
// runs it: its RTMP session class on a plain net.Server, the config values
// PeerTube uses, the stream path checked on postPublish (/live/<key> with a
// known key) and an unknown key aborted by stopping the session after
// NetStream.Publish.Start. Accepted streams are pulled back with ffmpeg from
// the local server, as PeerTube's muxing session does, into an FLV file.
//
// usage: node nms2-peertube.js <node-media-server dir> <port> <key> <pull dir>
'use strict';
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');

const [, , nmsDir, portArg, validKey, pullDir] = process.argv;
const port = Number(portArg);
const NodeRtmpSession = require(path.join(nmsDir, 'src', 'node_rtmp_session'));
const context = require(path.join(nmsDir, 'src', 'node_core_ctx'));
const nmsLogger = require(path.join(nmsDir, 'src', 'node_core_logger'));
nmsLogger.setLogType(1); // errors and the session lines below only

// PeerTube's VIDEO_LIVE.RTMP constants.
const config = { rtmp: { port, chunk_size: 60000, gop_cache: true, ping: 60, ping_timeout: 30 } };

let pulls = 0;
function abortSession(sessionId) {
  const session = context.sessions.get(sessionId);
  if (session) {
    session.stop();
    context.sessions.delete(sessionId);
  }
}

context.nodeEvent.on('postPublish', (sessionId, streamPath) => {
  const parts = streamPath.split('/');
  if (parts.length !== 3 || parts[1] !== 'live') {
    console.log('reject: bad path');
    return abortSession(sessionId);
  }
  // PeerTube looks the key up in its database (asynchronously).
  setTimeout(() => {
    if (parts[2] !== validKey) {
      console.log('reject: unknown stream key');
      return abortSession(sessionId);
    }
    const session = context.sessions.get(sessionId);
    const input = session.inputOriginUrl + streamPath;
    const out = path.join(pullDir, `pull-${++pulls}.flv`);
    console.log(`accept: publish ${pulls}`);
    const ff = spawn('ffmpeg', ['-v', 'error', '-y', '-i', input, '-c', 'copy', '-f', 'flv', out], { stdio: 'inherit' });
    ff.on('exit', (code) => console.log(`pull done ${pulls} code=${code}`));
  }, 20);
});

context.nodeEvent.on('donePublish', () => console.log('donePublish'));

const server = net.createServer((socket) => {
  const session = new NodeRtmpSession(config, socket);
  session.inputOriginUrl = 'rtmp://127.0.0.1:' + port;
  session.run();
});
server.listen(port, '127.0.0.1', () => console.log('ready'));

// Starts telegram-test-api (the npm Bot API emulator) on 127.0.0.1:PORT for
// the Telegram channel tests: node telegram-test-api.js MODULE_DIR PORT.
// Prints "READY <url>" once it listens; SIGTERM stops it.
const TelegramServer = require(process.argv[2]);
const port = Number(process.argv[3]);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 600 });
server.start().then(
  () => console.log('READY ' + server.config.apiURL),
  (err) => { console.error('telegram-test-api: ' + err); process.exit(1); },
);
process.on('SIGTERM', () => { server.stop().finally(() => process.exit(0)); });

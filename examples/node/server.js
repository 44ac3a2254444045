// npm start: BROKER_ISSUER (default the development instance,
// http://127.0.0.1:8080), API_AUDIENCE (default "dev": the development
// instance's client, whose tokens name it as their audience), PORT (3001).
import { createApp } from './app.js';

const app = createApp({
  issuer: process.env.BROKER_ISSUER ?? 'http://127.0.0.1:8080',
  audience: process.env.API_AUDIENCE ?? 'dev',
});
const port = Number(process.env.PORT ?? 3001);
app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));

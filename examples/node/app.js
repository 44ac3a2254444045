import express from 'express';

import { brokerTokens } from './brokerToken.js';

// createApp is an API that trusts the broker's access tokens for audience.
export function createApp({ issuer, audience }) {
  const requireToken = brokerTokens({ issuer, audience });
  const app = express();

  app.get('/me', requireToken(), (req, res) => {
    res.json({ sub: req.auth.sub, client_id: req.auth.clientId, scope: [...req.auth.scopes].sort() });
  });

  app.get('/orders', requireToken('orders.read'), (req, res) => {
    res.json({ sub: req.auth.sub, orders: [] });
  });

  return app;
}

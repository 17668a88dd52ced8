// The ui room's door: the dashboard server (`sftkit ui`) and its JSON API.

export * from './server.ts';

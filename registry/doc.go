// Package registry is airlock's registry client: one shared HTTP client with docker credentials and
// a token cache (Registries), the token realm guard (RealmTransport), plain-HTTP and TLS hints,
// retries with backoff and a stall watchdog (Retry), Range resume of blob downloads (FetchFrom), and
// the distribution API URLs airlock builds itself (URL, Get). It knows nothing of plans, archives or
// copying.
package registry

// Package registry is airlock's registry client: one shared HTTP client with docker credentials and
// a token cache (Registries), the token realm guard (RealmTransport), plain-HTTP and TLS hints, one
// retry layer (Retry), one stall guard for both directions (stallTransport), Range resume of blob
// downloads (FetchFrom), and the distribution API URLs airlock builds itself (URL, Get). It knows
// nothing of plans, archives or copying.
package registry

package engine

import (
	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror/plan"
)

// What the external tests (package engine_test) reach inside the engine.
var (
	ExplainRefusal = explainRefusal
	SparseAdvice   = sparseAdvice
	TagsOf         = tagsOf
)

const ProbeSize = probeSize

// Monolithic is what t learnt of how the registry takes blobs: 0 not asked yet.
func (t *RegistryTarget) Monolithic() int32 { return t.monolithic.Load() }

// BlobOrder lists the blobs of plans in the order the copy fetches them (copyBlobs), each image into
// a tar store.
func BlobOrder(plans []*plan.ImagePlan) []digest.Digest {
	st := &tarStore{&TarTarget{out: "a.tar"}}
	c := &copying{plans: plans, stores: make([]Store, len(plans)), report: &Report{Images: make([]ImageReport, len(plans))}}
	for i := range c.stores {
		c.stores[i] = st
	}
	var out []digest.Digest
	for _, task := range c.blobTasks() {
		out = append(out, task.desc.Digest)
	}
	return out
}

package config

// blockedImage returns the first rule of the blocked list that matches img, and true. A rule is a
// regular expression (Go's RE2 syntax, not anchored) matched against the reference in its canonical
// form, "registry/repository[:tag][@digest]" with Docker Hub names spelled out ("nginx" is
// "docker.io/library/nginx:latest"). A reference with both a tag and a digest is also matched without
// its digest and without its tag, so pinning an image by digest never unblocks it and
// "^registry.example.com/team/app:1\.4\.2$" blocks "registry.example.com/team/app:1.4.2@sha256:...".
func (s *ImageSet) blockedImage(img Image) (rule string, blocked bool) {
	forms := []string{img.String()}
	if img.Tag != "" && img.Digest != "" {
		tagOnly, digestOnly := img, img
		tagOnly.Digest, digestOnly.Tag = "", ""
		forms = append(forms, tagOnly.String(), digestOnly.String())
	}
	return s.blockedForms(forms...)
}

// BlockedBy returns the first rule of the blocked list that matches img, and true (see blockedImage):
// for references that are not listed as images, such as the charts of a charts entry.
func (s *ImageSet) BlockedBy(img Image) (rule string, blocked bool) { return s.blockedImage(img) }

// blockedForms returns the first rule that matches one of forms.
func (s *ImageSet) blockedForms(forms ...string) (rule string, blocked bool) {
	for _, re := range s.BlockedRules {
		for _, f := range forms {
			if re.MatchString(f) {
				return re.String(), true
			}
		}
	}
	return "", false
}

// BlockedImage is an image left out because a blocked rule matches it.
type BlockedImage struct {
	Image Image
	Rule  string // the blocked entry that matched, as written, e.g. ":latest$"
}

// Expand returns the images to mirror: every entry of images, then, for each repository in file
// order, an image for each tag picked[r.String()] names (see Repository.Image), in the order given.
// An image that a blocked rule matches is returned in blocked instead, with its rule. A picked tag
// whose image is already in the list (listed under images, or picked twice) is left out: the first
// listing, with its platforms and target, wins. picked holds the tags Pick returned for each
// repository, keyed by its canonical name; a repository without an entry contributes nothing.
func (s *ImageSet) Expand(picked map[string][]string) (images []Image, blocked []BlockedImage) {
	seen := make(map[string]bool)
	add := func(img Image) {
		key := img.String()
		if seen[key] {
			return
		}
		seen[key] = true
		if rule, ok := s.blockedImage(img); ok {
			blocked = append(blocked, BlockedImage{Image: img, Rule: rule})
			return
		}
		images = append(images, img)
	}
	for _, img := range s.Images {
		add(img)
	}
	for _, r := range s.Repositories {
		for _, tag := range picked[r.String()] {
			add(r.Image(tag))
		}
	}
	return images, blocked
}

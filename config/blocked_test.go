package config

// Blocked reports which rule of the blocked list blocks the reference ref, if any: the rule as
// written in the file, and true, as Expand decides it (see blockedImage). A reference that does not
// parse is matched as given. The tests' view of the blocked list; airlock itself blocks in Expand.
func (s *ImageSet) Blocked(ref string) (rule string, blocked bool) {
	img, err := ParseReference(ref)
	if err != nil {
		return s.blockedForms(ref)
	}
	return s.blockedImage(img)
}

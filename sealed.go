package envy

// SealedValue is one stored value as a key rotation re-seals it: a var's
// current value (Revision 0) or a history entry's (Revision set), its
// sealed bytes, and the bytes to put in their place.
type SealedValue struct {
	Scope    string
	Name     string
	Version  int64 // with Scope and Name, the value's additional data (AD)
	Revision int64 // the history entry's revision; 0 for a var's current value
	Sealed   []byte
	New      []byte
}

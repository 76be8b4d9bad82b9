//go:build !linux

package libpam

// modSys is the system part of the module cache, which only Linux has: other
// systems offer no /proc/self/maps to match a loaded object with its file.
type modSys struct{}

func (s *modSys) init(*Lib) bool                 { return false }
func (s *modSys) adds() (uint64, bool)           { return 0, false }
func (s *modSys) counts() (uint64, uint64, bool) { return 0, 0, false }
func (s *modSys) objects() []object              { return nil }
func (s *modSys) noload(string) uintptr          { return 0 }
func (s *modSys) dlclose(uintptr)                {}
func (s *modSys) isModule(uintptr, string) bool  { return false }
func (s *modSys) watch(string)                   {}
func (s *modSys) changed() bool                  { return false }
func (s *modSys) pending() bool                  { return false }

func statFile(string) (fileID, bool) { return fileID{}, false }
func readMaps() []mapping            { return nil }

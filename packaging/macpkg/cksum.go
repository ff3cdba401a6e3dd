package macpkg

// cksumTable is the MSB-first CRC table for the polynomial 0x04C11DB7 used
// by POSIX cksum(1).
var cksumTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// posixCksum returns the CRC that POSIX cksum(1) prints for data: the
// non-reflected CRC-32 over the bytes followed by the length (least
// significant byte first, no trailing zero bytes), inverted. BOM records
// carry this value, not zlib's CRC-32.
func posixCksum(data []byte) uint32 {
	var crc uint32
	for _, b := range data {
		crc = crc<<8 ^ cksumTable[byte(crc>>24)^b]
	}
	for n := uint64(len(data)); n > 0; n >>= 8 {
		crc = crc<<8 ^ cksumTable[byte(crc>>24)^byte(n)]
	}
	return ^crc
}

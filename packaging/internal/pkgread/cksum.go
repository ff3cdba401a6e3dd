package pkgread

// Cksum computes the CRC printed by POSIX cksum(1), bit by bit (the writer
// uses a table): CRC-32 polynomial 0x04C11DB7, most significant bit first,
// initial value 0, over the data and then the length in as few bytes as
// needed (least significant first), finally inverted.
func Cksum(data []byte) uint32 {
	var crc uint32
	feed := func(b byte) {
		crc ^= uint32(b) << 24
		for i := 0; i < 8; i++ {
			if crc&(1<<31) != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	for _, b := range data {
		feed(b)
	}
	for n := len(data); n > 0; n >>= 8 {
		feed(byte(n & 0xff))
	}
	return ^crc
}

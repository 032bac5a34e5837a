// CRC32C: known vectors, hardware and incremental agreement, masking round trip.
#include "ipc/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace hfe::crc32c {

TEST(Crc32cTest, StandardResults) {
  // RFC 3720 B.4 test vectors.
  char buf[32];
  std::memset(buf, 0, sizeof buf);
  EXPECT_EQ(0x8a9136aau, Value(buf, sizeof buf));
  std::memset(buf, 0xff, sizeof buf);
  EXPECT_EQ(0x62a8ab43u, Value(buf, sizeof buf));
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(0x46dd794eu, Value(buf, sizeof buf));
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(0x113fdb5cu, Value(buf, sizeof buf));
  EXPECT_EQ(0xe3069283u, Value("123456789", 9));
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string s = "hello hfevents, a frame of some length that is not a multiple of eight";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(Value(s.data(), s.size()), Extend(Value(s.data(), cut), s.data() + cut, s.size() - cut));
  }
}

TEST(Crc32cTest, MaskRoundTripsAndDiffers) {
  uint32_t crc = Value("foo", 3);
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));
}

}  // namespace hfe::crc32c

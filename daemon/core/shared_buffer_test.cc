#include "daemon/core/shared_buffer.h"

#include <gtest/gtest.h>

#include <string>

namespace ei {
namespace {

TEST(SharedBuffer, HoldsWhatIsAssignedAndGrowsUpToItsLimit) {
  SharedBuffer buffer(16, 1000);
  EXPECT_EQ(buffer.capacity(), 16u);
  const std::string small = "hello";
  ASSERT_TRUE(buffer.Assign(small));
  EXPECT_EQ(std::string(buffer.data(), small.size()), small);
  EXPECT_EQ(buffer.capacity(), 16u);

  const std::string big(100, 'x');
  ASSERT_TRUE(buffer.Assign(big));
  EXPECT_GE(buffer.capacity(), 100u);
  EXPECT_EQ(std::string(buffer.data(), big.size()), big);

  const std::string too_big(1001, 'y');
  EXPECT_FALSE(buffer.Assign(too_big));
  EXPECT_LE(buffer.capacity(), 1000u);
}

TEST(SharedBuffer, GrowsGeometricallyButNeverPastTheLimit) {
  SharedBuffer buffer(100, 250);
  buffer.Reserve(101);
  EXPECT_EQ(buffer.capacity(), 200u);
  buffer.Reserve(201);
  EXPECT_EQ(buffer.capacity(), 250u);
  buffer.Reserve(10);
  EXPECT_EQ(buffer.capacity(), 250u);
}

TEST(SharedBuffer, InitialSizeIsCappedByTheLimit) {
  SharedBuffer buffer(1 << 20, 4096);
  EXPECT_EQ(buffer.capacity(), 4096u);
}

}  // namespace
}  // namespace ei

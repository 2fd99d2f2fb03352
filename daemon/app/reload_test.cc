#include "daemon/app/reload.h"

#include <gtest/gtest.h>

namespace ei {
namespace {

TEST(PlanReload, AppliesWorkersAndAccessAndDefersTheRest) {
  Config running;
  running.socket = "/run/extrainterpreters/ei.sock";
  running.workers = 2;
  Config wanted = running;
  EXPECT_TRUE(PlanReload(running, wanted).applied.empty());
  EXPECT_TRUE(PlanReload(running, wanted).needs_restart.empty());
  wanted.workers = 4;
  wanted.idle_spin_us = 0;
  wanted.allow_groups = {"extrainterpreters"};
  wanted.socket = "/run/other.sock";
  wanted.max_frame_bytes = 1 << 20;
  ReloadPlan plan = PlanReload(running, wanted);
  EXPECT_EQ(plan.applied,
            (std::vector<std::string>{"workers 2 -> 4", "allow_groups [] -> [extrainterpreters]",
                                      "idle_spin_us 200 -> 0"}));
  EXPECT_EQ(plan.needs_restart,
            (std::vector<std::string>{"socket /run/extrainterpreters/ei.sock -> /run/other.sock",
                                      "max_frame_bytes 268435456 -> 1048576"}));
}

TEST(PlanReload, TheDefaultMaxInterpretersFollowsWorkersSilently) {
  Config running;
  running.workers = 2;
  running.max_interpreters = 8;
  Config wanted = running;
  wanted.workers = 3;
  wanted.max_interpreters = 12;
  EXPECT_TRUE(PlanReload(running, wanted).needs_restart.empty());
  wanted.max_interpreters = 10;
  EXPECT_EQ(PlanReload(running, wanted).needs_restart,
            (std::vector<std::string>{"max_interpreters 8 -> 10"}));
}

TEST(PlanReload, ProcessLaneSettingsNeedARestart) {
  Config running;
  Config wanted = running;
  wanted.process_workers = 3;
  wanted.process_rerun = false;
  wanted.process_worker_idle_seconds = 5;
  EXPECT_TRUE(PlanReload(running, wanted).applied.empty());
  EXPECT_EQ(PlanReload(running, wanted).needs_restart,
            (std::vector<std::string>{"process_workers 1 -> 3", "process_rerun true -> false",
                                      "process_worker_idle 60 -> 5"}));
}

}  // namespace
}  // namespace ei

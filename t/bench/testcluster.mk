# build/testcluster: the test cluster builder as a command (make demo, make bench).
$(BUILD)/testcluster: $(BUILD)/obj/t/tools/testcluster.o $(HARNESS)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)
-include $(BUILD)/obj/t/tools/testcluster.d
demo: $(BUILD)/testcluster

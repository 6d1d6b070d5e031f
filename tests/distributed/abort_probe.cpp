// Run under mpirun -np 2 by CTest: rank 1 throws while rank 0 waits for it in a
// collective. distributed::run must print rank 1's message and end both ranks (the test
// has a timeout: a hang fails it).
#include <metalearn/distributed/run.hpp>
#include <stdexcept>

int main(int argc, char** argv) {
  metalearn::distributed::Communicator comm(&argc, &argv);
  return metalearn::distributed::run(comm, [&] {
    if (comm.rank() == 1) throw std::runtime_error("deliberate failure on one rank");
    comm.barrier();  // never returns: rank 1 does not come
    return 0;
  });
}

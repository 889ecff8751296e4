import ArgumentParser
struct Pretrain: AsyncParsableCommand { func run() async throws {} }

import ArgumentParser
struct Pretrain: AsyncParsableCommand { func run() async throws {} }
struct Tokenize: AsyncParsableCommand { func run() async throws {} }
struct TokenizerCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "tokenizer") }

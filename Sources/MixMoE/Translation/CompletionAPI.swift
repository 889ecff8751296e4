import Foundation

// The OpenAI-style completion API's messages and responses as types (what `mixmoe serve`'s
// /v1/completions and /v1/chat/completions read and write), and the chat template that turns
// messages into a prompt. Field names are OpenAI's; `logprobs` and an unset `finish_reason` are
// written as JSON null, as OpenAI's responses carry them.

/// Who wrote a chat message.
public enum ChatRole: String, Codable, Sendable, CaseIterable {
    case system, user, assistant
}

public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: ChatRole
    public var content: String
    public init(role: ChatRole, content: String) { self.role = role; self.content = content }
}

/// The plain chat template (the models here have none of their own): one "Role: content" line per
/// message, then "Assistant:". The reply ends at a newline, as the template is line-based.
public enum ChatTemplate {
    public static func prompt(_ messages: [ChatMessage]) -> String {
        messages.map { m in "\(m.role.rawValue.prefix(1).uppercased() + m.role.rawValue.dropFirst()): \(m.content)" }
            .joined(separator: "\n") + "\nAssistant:"
    }
    /// The stop string the template's replies end at.
    public static let replyEnd = "\n"
}

/// Why a completion ended: a stop token or string, or `max_tokens`.
public enum CompletionFinish: String, Codable, Sendable {
    case stop, length
}

public struct CompletionUsage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }
    public init(promptTokens: Int, completionTokens: Int) { self.promptTokens = promptTokens; self.completionTokens = completionTokens }

    enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens" }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens); try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try c.decode(Int.self, forKey: .promptTokens); completionTokens = try c.decode(Int.self, forKey: .completionTokens)
    }
}

/// One choice of a completion (`text`) or a chat completion (`message`), or of a streamed chunk
/// (`text`, or `delta` with the role on the first chunk).
public struct CompletionChoice: Encodable, Sendable {
    public enum Content: Sendable {
        case text(String)
        case message(ChatMessage)
        case delta(role: ChatRole?, content: String?)
    }
    public var index: Int
    public var content: Content
    public var finishReason: CompletionFinish?

    public init(index: Int, content: Content, finishReason: CompletionFinish?) {
        self.index = index; self.content = content; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, text, message, delta, logprobs, finishReason = "finish_reason" }
    enum DeltaKeys: String, CodingKey { case role, content }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        switch content {
        case .text(let t):
            try c.encode(t, forKey: .text)
            try c.encodeNil(forKey: .logprobs)
        case .message(let m): try c.encode(m, forKey: .message)
        case .delta(let role, let text):
            var d = c.nestedContainer(keyedBy: DeltaKeys.self, forKey: .delta)
            try d.encodeIfPresent(role, forKey: .role); try d.encodeIfPresent(text, forKey: .content)
        }
        if let finishReason { try c.encode(finishReason, forKey: .finishReason) } else { try c.encodeNil(forKey: .finishReason) }
    }
}

/// A completion response, or one chunk of a stream (`object` says which).
public struct Completion: Encodable, Sendable {
    public enum Object: String, Encodable, Sendable {
        case textCompletion = "text_completion"
        case chatCompletion = "chat.completion"
        case chatCompletionChunk = "chat.completion.chunk"
    }
    public var id: String
    public var object: Object
    public var created: Int
    public var model: String
    public var choices: [CompletionChoice]
    /// Absent from stream chunks.
    public var usage: CompletionUsage?

    public init(id: String, object: Object, created: Int, model: String, choices: [CompletionChoice], usage: CompletionUsage? = nil) {
        self.id = id; self.object = object; self.created = created; self.model = model; self.choices = choices; self.usage = usage
    }
}

/// `/v1/models`: the one model a server holds.
public struct ModelList: Encodable, Sendable {
    public struct Entry: Encodable, Sendable {
        public var id: String
        public var object = "model"
        public var created: Int
        public var ownedBy = "mixmoe"
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }
    public var object = "list"
    public var data: [Entry]
    public init(id: String, created: Int) { data = [Entry(id: id, created: created)] }
}

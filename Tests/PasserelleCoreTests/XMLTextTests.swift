import PasserelleCore
import Testing

@Suite struct XMLTextTests {
    @Test func escapesThePredefinedEntitiesOnly() {
        #expect(XMLText.escape(#"a<b>&"c" 'd' é"#) == "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos; é")
        #expect(XMLText.escape("l'hôpital", apostrophe: "&#39;") == "l&#39;hôpital")
        #expect(XMLText.escape("plain") == "plain")
    }
}

import CCurl

func _curlVersion() -> String { String(cString: curl_version()) }

import CXMLSec
import CLibXML2
import COpenSSL

let _xmlsecVersion = XMLSEC_VERSION

import Foundation

print("passerelle")

# Verbatim copy of the seed's Python script (../shared/seed/easymaker-algorithm-guide.ko.md, appendix
# "이미지 바이트 배열 변환 파이썬 코드"), the reference em-b64 must match byte for byte. It writes ./input.json.
# Only these comment lines were added; do not edit the code below.
import base64
import json
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("filename", help="converts image to bytes array",
                    type=str)
args = parser.parse_args()

image = open(args.filename, 'rb')  # open binary file in read mode
image_read = image.read()
image_64_encode = base64.b64encode(image_read)
bytes_array = image_64_encode.decode('utf-8')
request = {
  "instances": [
    {
      "data": bytes_array
    }
  ]
}

with open('input.json', 'w') as outfile:
    json.dump(request, outfile, indent=4, sort_keys=True)
